"""Audio in and out: metadata, decoding (load, stream, open_audio) and encoding."""
