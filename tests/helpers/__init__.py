"""Test support shared by every test folder: databases, the app client, real processes."""
