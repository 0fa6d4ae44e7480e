"""Finding or recording a customer from what a kiosk, a phone or a member of staff knows."""

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.errors import InvalidInput
from ..extensions import db
from .models import Customer


def normalise_phone(raw: str, region: str = "ID") -> str:
    """Parse a phone number written as people write it and return it in E.164.

    `0812-3456-7890` in an Indonesian branch becomes `+6281234567890`.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"{raw!r} is not a phone number", "invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{raw!r} is not a valid phone number", "invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identify_customer(
    *,
    phone: str | None = None,
    external_id: str | None = None,
    name: str | None = None,
    email: str | None = None,
    region: str = "ID",
    trusted: bool = False,
) -> Customer | None:
    """The customer with this phone number, CRM id or e-mail address, created if new.

    `trusted` callers (staff) may fill in a missing name; an anonymous caller never changes
    what is stored about an existing customer.
    """
    if not phone and not external_id and not email:
        return None
    session = db.session
    e164 = normalise_phone(phone, region) if phone else None
    address = email.strip().lower() if email else None
    customer = None
    if external_id:
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None and e164:
        customer = session.scalar(select(Customer).where(Customer.phone == e164))
    if customer is None and address and not e164:
        customer = session.scalar(select(Customer).where(Customer.email == address))
    if customer is None:
        try:
            with session.begin_nested():  # two kiosks may record the same new number at once
                customer = Customer(
                    phone=e164,
                    external_id=external_id,
                    email=address if not e164 else None,
                    name=name,
                )
                session.add(customer)
        except IntegrityError:
            if e164:
                key = Customer.phone == e164
            elif external_id:
                key = Customer.external_id == external_id
            else:
                key = Customer.email == address
            customer = session.scalar(select(Customer).where(key))
    elif trusted and name and not customer.name:
        customer.name = name
    return customer
