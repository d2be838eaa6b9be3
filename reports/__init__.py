"""Reports rendered from result stores."""
