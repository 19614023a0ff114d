"""What SMS providers' answers mean: sent, rate-limited (try later), a bad number, or our account.

A relay in front of a provider often passes the provider's own answer on, and
the providers answer in their own words, often with HTTP 200:

    Aliyun SMS       {"Code": "OK", "BizId": "..."}
                     {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"}
    Tencent Cloud    {"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": "..."}]}}
                     {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", ...}}}
    Twilio           201 {"sid": "SM..."};  400 {"code": 21211, "message": "..."}
    ours             {"id": "..."};  4xx {"error": "invalid_number", "message": "..."}
                     (read by its HTTP status, as `channels._http` says)

`classify` reads the code wherever the provider puts it. Rate limits are
transient, with the wait the limit implies; an invalid number is permanent
and says "invalid number" (a hard bounce for that number); an opted-out
number is permanent but not the address's fault; a refused signature,
template, balance or credentials is a `ChannelConfigError`. A code not
listed is left to the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import Receipt
from channels.errors import ChannelConfigError

RATE_LIMITED: dict[str, float] = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,  # Aliyun: per-number minute / hour / day flow control
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,  # Tencent Cloud
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600.0,
    "20429": 60.0,  # Twilio: too many requests
}
"""Rate-limit codes and the seconds to wait (at most an hour: the retry backoff's ceiling)."""
INVALID_NUMBER = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",  # Aliyun
        "InvalidParameterValue.IncorrectPhoneNumber",  # Tencent Cloud
        "UnsupportedOperation.UnsupportedRegion",
        "21211",  # Twilio: the 'To' number is not a valid phone number
        "21614",  # Twilio: the 'To' number is not a mobile number
    }
)
OPTED_OUT = frozenset(
    {
        "21610",  # Twilio: the recipient replied STOP
        "FailedOperation.PhoneNumberInBlacklist",  # Tencent Cloud: the user unsubscribed
        "isv.BLACK_KEY_CONTROL_LIMIT",
    }
)
ACCOUNT = frozenset(
    {
        "isv.AMOUNT_NOT_ENOUGH",  # Aliyun: balance
        "isv.OUT_OF_SERVICE",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isp.RAM_PERMISSION_DENY",
        "FailedOperation.InsufficientBalanceInSmsPackage",  # Tencent Cloud
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "AuthFailure.SignatureFailure",
        "AuthFailure.SecretIdNotFound",
        "20003",  # Twilio: authentication
    }
)
SUCCESS = frozenset({"OK", "Ok"})


def provider_code(answer: Mapping[str, Any]) -> tuple[str | None, str, str | None]:
    """(code, message, provider id) from any of the answers above; code None when none."""
    response = answer.get("Response")
    if isinstance(response, Mapping):  # Tencent Cloud
        error = response.get("Error")
        if isinstance(error, Mapping):
            return _text(error.get("Code")), str(error.get("Message", "")), None
        statuses = response.get("SendStatusSet")
        if isinstance(statuses, list) and statuses and isinstance(statuses[0], Mapping):
            first = statuses[0]
            return (
                _text(first.get("Code")),
                str(first.get("Message", "")),
                _text(first.get("SerialNo")),
            )
    if "Code" in answer:  # Aliyun
        return _text(answer["Code"]), str(answer.get("Message", "")), _text(answer.get("BizId"))
    if "code" in answer:  # Twilio
        return _text(answer["code"]), str(answer.get("message", "")), None
    return None, "", None


def classify(answer: Mapping[str, Any], where: str) -> Receipt | None:
    """The receipt a known provider code means; None to go by the HTTP status."""
    code, message, provider_id = provider_code(answer)
    if code is None:
        return None
    said = f"{code}: {message}" if message else code
    if code in SUCCESS:
        return Receipt.sent(provider_id, said)
    if code in RATE_LIMITED:
        return Receipt.transient(f"rate limited by the SMS provider: {said}", RATE_LIMITED[code])
    if code in INVALID_NUMBER:
        return Receipt.permanent(f"invalid number: {said}")
    if code in OPTED_OUT:
        return Receipt.permanent(f"the number opted out of SMS: {said}")
    if code in ACCOUNT:
        raise ChannelConfigError(f"{where} refused our account, signature or template: {said}")
    return None


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
