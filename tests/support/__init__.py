"""Test support: one small behaving fake per interface (rag/embedding.Embedder, rag/generation.Generator,
rag/retrieval.Retriever, and the pipeline the API and the chat call)."""
