"""One router per resource: tokens, users, reconstructions, frames, audit, health."""
