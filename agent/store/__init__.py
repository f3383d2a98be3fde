"""The repository: encrypted, compressed, content-addressed, write-once blobs."""
