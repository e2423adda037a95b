"""The browser chat UI (Gradio), mounted into the API server by `ui.app.mount_ui`.

Nothing here is imported by `rag` at module import time: Gradio loads only when the server starts.
"""
