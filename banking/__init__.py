"""The banking core: tables, ledger, users and contacts. Imports no other package."""

from banking.db import make_engine
from banking.demo import seed_demo_data
from banking.directory import ContactEntry, Directory, Factor, Person
from banking.ledger import (
    AccountNotFound,
    InsufficientFunds,
    Ledger,
    TransferAlreadyMade,
    TransferReceipt,
)
from banking.money import InvalidAmount, format_rupees, rupees_number, rupees_to_paise

__all__ = [
    "AccountNotFound",
    "ContactEntry",
    "Directory",
    "Factor",
    "InsufficientFunds",
    "InvalidAmount",
    "Ledger",
    "Person",
    "TransferAlreadyMade",
    "TransferReceipt",
    "format_rupees",
    "make_engine",
    "rupees_number",
    "rupees_to_paise",
    "seed_demo_data",
]
