"""Evidence and confidence: the statistics that decide whether a measured index helped."""
