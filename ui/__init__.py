"""Qt widgets and view code. Talks only to app/ services; owns no business logic."""
