"""Interview sessions: where each lives and which one a command means, its start, improvement round and end, its grades, work history, archive and summary."""
