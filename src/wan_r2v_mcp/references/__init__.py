"""Reference media: where each comes from, what it really is, how the prompt names it."""
