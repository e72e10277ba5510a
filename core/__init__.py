"""Fleet state, configuration and (later) scheduling policy. Never imports Textual."""
