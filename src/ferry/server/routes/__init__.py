"""One module per resource; routes parse, call one service or store function, return a schema."""
