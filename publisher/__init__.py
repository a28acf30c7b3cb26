"""What the listener and the actors share: configuration, database, storage,
the origin client and imaging."""
