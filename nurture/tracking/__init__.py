"""The tracking service: open pixel, click redirects, unsubscribes and the event and lead API.

`create_app` builds the Starlette app (endpoints and status codes in
`nurture.tracking.app`); `load_config` reads its settings (the
runtime's, see `nurture.config`); `stored_links` is what the worker stores in ``Delivery.links``
so clicks can be redirected. ``nurture serve`` runs it under uvicorn.
"""

from __future__ import annotations

from nurture.config import DEV_SECRET_KEY, ConfigError
from nurture.tracking.app import create_app
from nurture.tracking.bodies import MAX_BODY
from nurture.tracking.config import TrackingConfig, load_config, tracking_config
from nurture.tracking.links import stored_link, stored_links
from nurture.tracking.pages import PIXEL_GIF
from nurture.tracking.schema import MAX_ITEMS, Invalid, Problem

__all__ = [
    "DEV_SECRET_KEY",
    "MAX_BODY",
    "MAX_ITEMS",
    "PIXEL_GIF",
    "ConfigError",
    "Invalid",
    "Problem",
    "TrackingConfig",
    "create_app",
    "load_config",
    "stored_link",
    "stored_links",
    "tracking_config",
]
