"""A stand-in for the regional public credit platform (自治区公共信用信息平台): a GraphQL service.

It has its own Strawberry schema, unlike the hub's: enterprises by unified social credit code,
each with a credit rating, a tax credit evaluation (graded by numeric code, tax paid in yuan)
and red-list entries (守信红名单, validity as `YYYYMMDD` text):

    enterprises(codes: [String!]!): [Enterprise]!        # list-argument lookups
    enterprise(code: String!): Enterprise                # one subject (the hub aliases it)
    searchEnterprises(name: String!, first: Int! = 10): [Enterprise!]!

`RegionalPlatform(...).app()` is a tiny Starlette app serving `POST /graphql`. It records every
request it receives (`received`: query, variables, headers), checks a bearer token or API key
if given, and has fault switches: `fault` = "http500", "garbage" (truncated JSON), "no_data",
"truncated" (the connection drops mid-body), "slow" (waits `delay` seconds) or "echo" (an error
quoting the request's credentials back); codes in `failing_codes` fail their nested fields,
codes in `vanishing_codes` fail the whole item (its non-null `code`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

FAULTS = (None, "http500", "garbage", "no_data", "truncated", "slow", "echo")


@strawberry.type(description="平台信用评价")
class CreditRating:
    level: str
    score: int
    evaluated_on: dt.date


@strawberry.type(description="纳税信用评价; grade_code 1..5 = A, B, M, C, D")
class TaxCredit:
    grade_code: int
    year: int
    evaluated_on: dt.date
    tax_paid_yuan: decimal.Decimal


@strawberry.type(description="守信红名单")
class RedListEntry:
    title: str
    issued_by: str
    date: dt.date
    valid_until: str  # YYYYMMDD


@dataclass
class EnterpriseFile:
    """What the platform holds about one enterprise."""

    code: str
    name: str
    legal_representative_id: str
    rating: CreditRating | None = None
    tax: TaxCredit | None = None
    red_list: list[RedListEntry] = field(default_factory=list)


def _platform(info: strawberry.Info) -> "RegionalPlatform":
    return info.context["platform"]


def _check(info: strawberry.Info, code: str, codes: str) -> None:
    if code in getattr(_platform(info), codes):
        raise RuntimeError(f"record store failed for {code}")


@strawberry.type(description="企业")
class Enterprise:
    file: strawberry.Private[EnterpriseFile]

    @strawberry.field
    def code(self, info: strawberry.Info) -> str:
        _check(info, self.file.code, "vanishing_codes")
        return self.file.code

    @strawberry.field
    def name(self) -> str:
        return self.file.name

    @strawberry.field
    def legal_representative_id(self) -> str:
        return self.file.legal_representative_id

    @strawberry.field
    def credit_rating(self, info: strawberry.Info) -> CreditRating | None:
        _check(info, self.file.code, "failing_codes")
        return self.file.rating

    @strawberry.field
    def tax_credit(self, info: strawberry.Info) -> TaxCredit | None:
        _check(info, self.file.code, "failing_codes")
        return self.file.tax

    @strawberry.field
    def red_list(self, info: strawberry.Info) -> list[RedListEntry] | None:
        _check(info, self.file.code, "failing_codes")
        return self.file.red_list


@strawberry.type
class Query:
    @strawberry.field
    def enterprises(self, info: strawberry.Info, codes: list[str]) -> list[Enterprise | None]:
        files = _platform(info).enterprises
        return [Enterprise(file=files[c]) for c in codes if c in files]

    @strawberry.field
    def enterprise(self, info: strawberry.Info, code: str) -> Enterprise | None:
        found = _platform(info).enterprises.get(code)
        return Enterprise(file=found) if found else None

    @strawberry.field
    def search_enterprises(self, info: strawberry.Info, name: str, first: int = 10) -> list[Enterprise]:
        files = _platform(info).enterprises.values()
        return [Enterprise(file=f) for f in files if name in f.name][:first]


class QuietSchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Resolver errors are part of the scenario; they are recorded, not logged."""


SCHEMA = QuietSchema(query=Query)


@dataclass(frozen=True)
class ReceivedRequest:
    query: str
    variables: dict[str, Any]
    operation_name: str | None
    headers: dict[str, str]


class TruncatedResponse(Response):
    """Promises a 1000-byte body, sends a few bytes, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"data": {"enterpr', "more_body": True})


class RegionalPlatform:
    """The upstream service, its data, what it received and its fault switches."""

    def __init__(self, enterprises: Iterable[EnterpriseFile], *, token: str | None = None,
                 api_key: tuple[str, str] | None = None) -> None:
        self.enterprises = {e.code: e for e in enterprises}
        self.token = token
        self.api_key = api_key
        self.received: list[ReceivedRequest] = []
        self.fault: str | None = None
        self.delay = 1.0
        self.failing_codes: set[str] = set()
        self.vanishing_codes: set[str] = set()

    def reset(self) -> None:
        self.received.clear()
        self.fault, self.failing_codes, self.vanishing_codes = None, set(), set()

    def _authorised(self, request: Request) -> bool:
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return False
        return self.api_key is None or request.headers.get(self.api_key[0]) == self.api_key[1]

    async def graphql(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"errors": [{"message": "the body is not JSON"}]}, status_code=400)
        self.received.append(ReceivedRequest(
            payload.get("query", ""), payload.get("variables") or {}, payload.get("operationName"), dict(request.headers),
        ))
        if not self._authorised(request):
            return JSONResponse({"errors": [{"message": "unauthorised"}]}, status_code=401)
        assert self.fault in FAULTS, self.fault
        if self.fault == "slow":
            await asyncio.sleep(self.delay)
        elif self.fault == "http500":
            return PlainTextResponse("internal server error", status_code=500)
        elif self.fault == "garbage":
            return Response(b'{"data": {"enterprises": [{"code": ', media_type="application/json")
        elif self.fault == "no_data":
            return JSONResponse({"errors": [{"message": "database connection pool exhausted"}]})
        elif self.fault == "truncated":
            return TruncatedResponse()
        elif self.fault == "echo":
            quoted = request.headers.get("authorization") or (request.headers.get(self.api_key[0]) if self.api_key else "")
            return JSONResponse({"errors": [{"message": f"credentials {quoted} are not accepted for this query"}]})
        result = await SCHEMA.execute(
            payload.get("query", ""), variable_values=payload.get("variables"),
            operation_name=payload.get("operationName"), context_value={"platform": self},
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return JSONResponse(body)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"])])


def sample_enterprises() -> list[EnterpriseFile]:
    """Five enterprises of Xincheng District: rated, taxed, some on the red list, one bare."""
    contract_honor = RedListEntry(title="自治区守合同重信用企业", issued_by="内蒙古自治区市场监督管理局",
                                  date=dt.date(2025, 3, 1), valid_until="20280228")
    tax_honor = RedListEntry(title="A级纳税人", issued_by="国家税务总局内蒙古自治区税务局",
                             date=dt.date(2025, 4, 20), valid_until="20260419")

    def rating(level: str, score: int) -> CreditRating:
        return CreditRating(level=level, score=score, evaluated_on=dt.date(2025, 6, 30))

    def tax(grade_code: int, paid_yuan: str) -> TaxCredit:
        return TaxCredit(grade_code=grade_code, year=2025, evaluated_on=dt.date(2026, 4, 15),
                         tax_paid_yuan=decimal.Decimal(paid_yuan))

    return [
        EnterpriseFile("91150102MA0000001A", "呼和浩特市新城区鑫达商贸有限公司", "150102199101010078",
                       rating("AAA", 95), tax(1, "1234500.00"), [contract_honor, tax_honor]),
        EnterpriseFile("91150102MA0000002B", "呼和浩特市新城区恒泰物流有限公司", "150102198505050031",
                       rating("BB", 71), tax(3, "88000"), [contract_honor]),
        EnterpriseFile("91150102MA0000003C", "呼和浩特市新城区青城建材有限公司", "150102197712120014",
                       None, tax(5, "0"), []),
        EnterpriseFile("91150102MA0000004D", "呼和浩特市新城区草原乳业有限公司", "150102199009090022",
                       rating("A", 83), None, [tax_honor]),
        EnterpriseFile("91150102MA0000005E", "呼和浩特市新城区鑫达物业有限公司", "150102196806060017"),
    ]
