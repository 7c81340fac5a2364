"""Teacher-student self-training: soft pseudo-labels, students, replacement, until no gain."""
