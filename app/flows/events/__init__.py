"""One module per webhook event family; ``registry`` (pure) says which (event, action) pairs."""
