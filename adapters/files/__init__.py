"""File storage on local disk."""
