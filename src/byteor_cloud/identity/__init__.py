"""Identity: users, passwords, personal access tokens, and turning a credential into a
principal."""
