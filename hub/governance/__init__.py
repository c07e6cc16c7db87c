"""Hub-owned facts that govern access: purposes, consents, objections, and what the hub knows of a
client at request time (its allowed purposes, the subject it speaks for).

The admin API (`hub.admin`) and the CLI change them; the executor reads them per request.
"""

from .client_directory import ClientDirectory, ClientFacts
from .consents import ConsentBook, ConsentError
from .objections import ObjectionError, ObjectionRegister
from .purposes import PurposeError, PurposeRegistry

__all__ = [
    "ClientDirectory",
    "ClientFacts",
    "ConsentBook",
    "ConsentError",
    "ObjectionError",
    "ObjectionRegister",
    "PurposeError",
    "PurposeRegistry",
]
