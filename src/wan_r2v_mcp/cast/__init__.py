"""Characters kept by name and brought into generations as @name."""
