"""Deliverability: what comes back after a message left (bounces, complaints, ESP events),
and the signed return paths that tie each bounce to one delivery."""
