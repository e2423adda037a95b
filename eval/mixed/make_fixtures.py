"""Write the binary documents of eval/mixed/docs/: travel-policy.pdf (3 pages) and onboarding.docx.

    python eval/mixed/make_fixtures.py      # from the repository root; rewrites both files

The PDF is written by hand (tests/docgen.py: Helvetica, headings set larger, a known text layer); the
DOCX by python-docx. The text/Markdown/HTML documents beside this script are committed as they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests import docgen  # noqa: E402

POLICY = [
    [
        ("h1", "Alder & Pine travel policy"),
        ("p", "This policy applies to every employee who travels for work, including trips to trade fairs "
              "and visits to timber suppliers. It was approved by the management board on 8 January 2024."),
        ("h2", "Booking"),
        ("p", "Trains are the default for any journey under five hours. Flights must be booked through the "
              "travel desk at least fourteen days before departure, in economy class."),
    ],
    [
        ("h2", "Hotels and meals"),
        ("p", "A hotel room may cost at most 130 EUR per night, or 180 EUR per night in Paris and London."),
        ("p", "The daily meal allowance is 35 EUR. It is paid for every day away from home, including the "
              "day of departure and the day of return."),
        ("h2", "Expense claims"),
        ("p", "Claims are submitted in the expense portal within 20 days of the end of the trip, with:"),
        ("li", "the original receipts, photographed or scanned"),
        ("li", "the name of the customer or supplier visited"),
    ],
    [
        ("h2", "Approval"),
        ("p", "Trips abroad are approved in advance by the head of department. Trips longer than ten days "
              "also need the approval of the finance director, Marc Olivier."),
    ],
]  # fmt: skip

ONBOARDING = [
    ("h1", "Onboarding guide"),
    ("p", "New employees start on a Monday and spend their first week in the Nantes workshop."),
    ("h2", "Equipment"),
    ("table", [["Item", "Who provides it", "Budget"],
               ["Safety boots", "Workshop manager", "120 EUR"],
               ["Laptop", "IT team", "1,100 EUR"],
               ["Work clothes", "Workshop manager", "200 EUR"]]),
    ("h2", "First week"),
    ("p", "During the first week every new employee completes:"),
    ("li", "a safety training on the workshop machines"),
    ("li", "a tour of the timber store with the head carpenter"),
    ("p", "Your mentor for the first three months is named in the welcome email."),
]  # fmt: skip


def main() -> None:
    (HERE / "docs" / "travel-policy.pdf").write_bytes(docgen.pdf(POLICY))
    (HERE / "docs" / "onboarding.docx").write_bytes(docgen.docx(ONBOARDING))
    print(f"wrote {HERE / 'docs'}/travel-policy.pdf and onboarding.docx")


if __name__ == "__main__":
    main()
