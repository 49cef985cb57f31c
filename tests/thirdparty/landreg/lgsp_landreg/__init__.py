"""A sample third-party adapter package: a land registry, its mock, its own error code."""
