"""Document processing: text extraction and the offline embedder."""
