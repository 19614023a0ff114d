"""SMS providers' own answers (Aliyun, Tencent Cloud, Twilio), passed on by a relay, read right:
a rate limit is transient, an invalid number permanent and a hard bounce, an account problem a
config error. A relay under uvicorn answers with each provider's documented body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels import ChannelConfigError, DeliveryStatus, OutboundMessage, Receipt, SmsChannel
from nurture.runtime.sending import blames_address
from tests.live import serving

ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "aliyun-ok": (200, {"Code": "OK", "Message": "OK", "BizId": "9006197469364984^0"}),
    "aliyun-limit": (
        200,
        {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"},
    ),
    "aliyun-number": (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}),
    "aliyun-balance": (200, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足"}),
    "tencent-ok": (
        200,
        {"Response": {"SendStatusSet": [{"SerialNo": "5000:1045", "Code": "Ok"}]}},
    ),
    "tencent-limit": (
        200,
        {
            "Response": {
                "SendStatusSet": [
                    {
                        "SerialNo": "",
                        "Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
                        "Message": "the number of sms messages sent from a single mobile number "
                        "within 30 seconds exceeds the upper limit",
                    }
                ]
            }
        },
    ),
    "tencent-number": (
        200,
        {
            "Response": {
                "SendStatusSet": [
                    {
                        "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                        "Message": "incorrect number format",
                    }
                ]
            }
        },
    ),
    "tencent-stop": (
        200,
        {"Response": {"SendStatusSet": [{"Code": "FailedOperation.PhoneNumberInBlacklist"}]}},
    ),
    "tencent-auth": (
        200,
        {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}}},
    ),
    "twilio-ok": (201, {"sid": "SM0123", "status": "queued"}),
    "twilio-number": (
        400,
        {"code": 21211, "message": "The 'To' number 12345 is not a valid phone number."},
    ),
    "twilio-stop": (
        400,
        {"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
    ),
    "twilio-limit": (429, {"code": 20429, "message": "Too Many Requests"}),
}


@pytest.fixture(scope="module")
def relay() -> Iterator[str]:
    """A relay that answers with the body named by the path's last part."""

    async def answer(request: Request) -> JSONResponse:
        status, body = ANSWERS[request.path_params["case"]]
        headers = {"Retry-After": "7"} if request.path_params["case"] == "twilio-limit" else {}
        return JSONResponse(body, status, headers=headers)

    app = Starlette(routes=[Route("/{case}", answer, methods=["POST"])])
    with serving(app, "sms-relay") as url:
        yield url


async def send(relay: str, case: str) -> Receipt:
    message = OutboundMessage("sms", "+8613912345678", "s-1", text="Hi")
    async with SmsChannel(f"{relay}/{case}") as channel:
        return await channel.send(message)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "provider_id"),
    [("aliyun-ok", "9006197469364984^0"), ("tencent-ok", "5000:1045"), ("twilio-ok", None)],
)
async def test_each_providers_success_is_sent(relay: str, case: str, provider_id: str) -> None:
    receipt = await send(relay, case)
    assert receipt.status is DeliveryStatus.SENT
    assert receipt.provider_id == provider_id


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "wait"), [("aliyun-limit", 60.0), ("tencent-limit", 30.0), ("twilio-limit", 7.0)]
)
async def test_a_rate_limit_is_transient_with_its_wait(relay: str, case: str, wait: float) -> None:
    # Aliyun and Tencent Cloud say it with HTTP 200: it must not count as sent
    receipt = await send(relay, case)
    assert receipt.status is DeliveryStatus.FAILED_TRANSIENT
    assert receipt.detail.startswith("rate limited by the SMS provider")
    assert receipt.retry_after == wait


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["aliyun-number", "tencent-number", "twilio-number"])
async def test_an_invalid_number_is_permanent_and_a_hard_bounce(relay: str, case: str) -> None:
    receipt = await send(relay, case)
    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail.startswith("invalid number: ")
    assert blames_address(receipt)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["tencent-stop", "twilio-stop"])
async def test_an_opted_out_number_is_permanent_but_no_bounce(relay: str, case: str) -> None:
    receipt = await send(relay, case)
    assert receipt.status is DeliveryStatus.FAILED_PERMANENT
    assert receipt.detail.startswith("the number opted out of SMS")
    assert not blames_address(receipt)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["aliyun-balance", "tencent-auth"])
async def test_an_account_problem_is_a_config_error(relay: str, case: str) -> None:
    with pytest.raises(ChannelConfigError, match="refused our account, signature or template"):
        await send(relay, case)
