"""Window tables and the web views that read them."""
