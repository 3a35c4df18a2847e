"""Front doors: adapters that translate a transport's requests to the pipeline and back."""
