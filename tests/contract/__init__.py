"""GitHub's published contract (REST OpenAPI descriptions, webhook schemas) checked in tests."""
