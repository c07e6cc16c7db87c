"""The demo district's credit lists: abnormal operations, credit commitments, major tax violations.

`CreditLists.populate` adds, to the generator's rows, in each department's own layout:

- market regulation (`jyycml`): listings in the directory of abnormal operations (经营异常名录) —
  most for an annual report not filed, the others for an address where the firm cannot be
  reached; most active firms are removed again once they put things right, revoked ones never;
- market regulation (`xycn`): credit commitments (信用承诺) of the four national types, with the
  outcome of the bureau's check (kept, broken, still running);
- the tax bureau (`major_tax_case`): cases published under the measures on major tax violations
  (重大税收违法失信主体信息公布管理办法), each for three years from its publication.

Records are drawn with a random generator of their own, after the rest of the district, so
everything else (and every earlier named sample) is as it was. `populate` returns its own named
samples, each guaranteed by construction: `abnormal_listed`, `abnormal_removed`,
`commitment_kept`, `commitment_broken`, `major_tax_violation` (inside its publicity window),
`major_tax_violation_expired` (past it) and `natural_tax_violation` (a resident).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Callable, Mapping, Sequence

from xinlian.policies.rows import add_months

Rows = dict[str, dict[str, list[dict[str, Any]]]]

LIST_SAMPLES = ("abnormal_listed", "abnormal_removed", "commitment_kept", "commitment_broken",
                "major_tax_violation", "major_tax_violation_expired")
NATURAL_LIST_SAMPLES = ("natural_tax_violation",)

# 经营异常名录 reasons (企业经营异常名录管理暂行办法 第四条), by the bureau's codes; a removal has the
# code of the listing it ends (docs/connectors.md maps both)
LISTING_WEIGHTS = {"1": 70, "2": 3, "3": 2, "4": 25}
# 信用承诺 types: 1 审批替代型, 2 主动型, 3 行业自律型, 4 信用修复型; outcomes: 1 履约, 0 未履约, 2 履约中
COMMITMENT_WEIGHTS = {"1": 55, "2": 25, "3": 15, "4": 5}
ASSOCIATION = "呼和浩特市新城区个体劳动者私营企业协会"
COMMITMENTS = {
    "1": ("{licence}办理（告知承诺制）",
          "本单位申请{licence}，承诺已经具备法律法规规定的许可条件，所提交材料真实有效；如有不实，愿意承担相应法律责任并接受撤销许可等处理。"),
    "2": ("主动公开信用承诺",
          "本单位承诺依法诚信经营，不制售假冒伪劣商品，不发布虚假广告，自觉接受政府、行业组织、社会公众和新闻媒体监督。"),
    "3": ("行业自律公约", "本单位承诺遵守行业自律公约，明码标价，公平竞争，不哄抬价格，不恶意低价竞争。"),
    "4": ("信用修复申请", "本单位已纠正失信行为、履行相关义务，承诺今后依法诚信经营；如再次发生失信行为，自愿接受相应惩戒。"),
}
INSPECTION_OFFICES = ("国家税务总局呼和浩特市税务局第一稽查局", "国家税务总局呼和浩特市税务局第二稽查局")
# (案件性质, 主要违法事实, 法律依据及处理处罚 with {amount} yuan and {fine} yuan)
TAX_CASES = (
    ("偷税", "采取虚假纳税申报、少列收入等手段，少缴增值税、企业所得税共计{amount}元。",
     "依照《中华人民共和国税收征收管理法》第六十三条第一款的规定，追缴少缴税款{amount}元，并处少缴税款一倍罚款{fine}元。"),
    ("虚开增值税专用发票", "在没有真实业务的情况下，为他人虚开增值税专用发票，涉及税额{amount}元。",
     "依照《中华人民共和国发票管理办法》第三十五条的规定，没收违法所得并处罚款{fine}元，涉嫌犯罪的已依法移送公安机关。"),
    ("逃避追缴欠税", "欠缴应纳税款，采取转移、隐匿财产的手段，致使税务机关无法追缴欠缴税款{amount}元。",
     "依照《中华人民共和国税收征收管理法》第六十五条的规定，追缴欠缴税款{amount}元，并处欠缴税款百分之五十罚款{fine}元。"),
)
NATURAL_TAX_CASE = (
    "偷税", "通过隐匿个人收入、虚构业务转换收入性质进行虚假申报，少缴个人所得税{amount}元。",
    "依照《中华人民共和国税收征收管理法》第六十三条第一款的规定，追缴少缴税款{amount}元，并处少缴税款一倍罚款{fine}元。",
)


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


class CreditLists:
    """Draws the credit lists into `rows` (department → table → rows), numbering with `number`."""

    def __init__(self, rng: random.Random, reference: dt.date, rows: Rows, number: Callable[[str, int], str],
                 departments: Mapping[str, str]) -> None:
        self.rng = rng
        self.ref = reference
        self.rows = rows
        self.number = number
        self.market, self.tax = departments["market"], departments["tax"]

    def day_between(self, start: dt.date, end: dt.date) -> dt.date:
        return start + dt.timedelta(days=self.rng.randrange(max(1, (end - start).days)))

    # ---- the district as a whole ------------------------------------------------------------
    def populate(self, firms: Sequence[dict[str, Any]], people: Sequence[dict[str, str]]) -> dict[str, str]:
        """Random records for `firms` and `people` (none of them an earlier named sample), then
        the named samples' records; returns the samples (name → USCC or resident ID)."""
        rng = self.rng
        wanted = len(LIST_SAMPLES)
        candidates = [f for f in firms if f["status"] == 1]
        if len(candidates) < wanted:  # a small district: firms of any status
            candidates = list(firms)
        if len(candidates) < 2 or not people:
            raise ValueError("the credit lists need at least two legal persons and one resident besides the samples")
        if len(candidates) >= wanted:
            picks = rng.sample(range(len(candidates)), wanted)
        else:  # too few: samples share firms, never the two tax samples (consecutive, so on different firms)
            picks = [i % len(candidates) for i in range(wanted)]
        named = {name: candidates[i] for name, i in zip(LIST_SAMPLES, picks)}
        resident = people[rng.randrange(len(people))]
        chosen = {f["uscc"] for f in named.values()}
        for firm in firms:
            if firm["uscc"] not in chosen:
                self.random_records(firm)
        self.plant(named, resident)
        return {name: firm["uscc"] for name, firm in named.items()} | {NATURAL_LIST_SAMPLES[0]: resident["id"]}

    def random_records(self, firm: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() < {1: 0.05, 2: 0.35, 3: 0.03}[firm["status"]]:
            self.abnormal(firm, removed=None)
        if firm["status"] == 1 and rng.random() < 0.10:
            for _ in range(rng.choices((1, 2), (80, 20))[0]):
                self.commitment(firm)
        if firm["status"] != 3 and rng.random() < 0.004:
            self.tax_case(firm["uscc"], firm["name"])

    def plant(self, firms: dict[str, dict[str, Any]], person: dict[str, str]) -> None:
        ref, days = self.ref, dt.timedelta
        self.abnormal(firms["abnormal_listed"], removed=False, listed=ref - days(200), reason="1")
        self.abnormal(firms["abnormal_removed"], removed=True, listed=ref - days(700), reason="4", removal=ref - days(500))
        self.commitment(firms["commitment_kept"], kind="1", made=ref - days(400), outcome="1", checked=ref - days(200))
        self.commitment(firms["commitment_broken"], kind="1", made=ref - days(300), outcome="0", checked=ref - days(100))
        self.commitment(firms["commitment_broken"], kind="2", made=ref - days(30), outcome="2", checked=None)
        f = firms["major_tax_violation"]
        self.tax_case(f["uscc"], f["name"], published=ref - days(200))
        f = firms["major_tax_violation_expired"]  # published 3.5 years ago: its three years are over
        self.tax_case(f["uscc"], f["name"], published=ref - days(1300))
        self.tax_case(person["id"], person["name"], published=ref - days(100), natural=True)

    # ---- the records --------------------------------------------------------------------------
    def abnormal(self, firm: dict[str, Any], removed: bool | None, listed: dt.date | None = None,
                 reason: str | None = None, removal: dt.date | None = None) -> None:
        """One listing; `removed` None: removed at random (never for a revoked firm)."""
        rng = self.rng
        reason = reason or rng.choices(tuple(LISTING_WEIGHTS), tuple(LISTING_WEIGHTS.values()))[0]
        if listed is None:
            earliest = max(firm["founded"] + dt.timedelta(days=400), self.ref - dt.timedelta(days=6 * 365))
            if earliest >= self.ref - dt.timedelta(days=10):
                return
            listed = self.day_between(earliest, self.ref - dt.timedelta(days=10))
            if reason == "1":  # annual reports are due by 30 June: the listings come in July
                year = listed.year if listed >= dt.date(listed.year, 7, 1) else listed.year - 1
                listed = max(dt.date(year, 7, 1) + dt.timedelta(days=rng.randrange(15)), earliest)
        if removed is None:
            removed = firm["status"] == 1 and rng.random() < 0.6
            removal = listed + dt.timedelta(days=rng.randrange(20, 600)) if removed else None
            if removal is not None and removal >= self.ref:
                removed, removal = False, None
        self.rows["market"]["jyycml"].append({
            "tyshxydm": firm["uscc"], "qymc": firm["name"], "lrjdswh": self.number("新市监异列〔{year}〕{n}号", listed.year),
            "lryy": reason, "lrrq": _ymd(listed), "zcjdjg": self.market,
            "ycyy": reason if removed else None, "ycrq": _ymd(removal) if removed and removal else None,
            "ycjdjg": self.market if removed else None, "sjdw": self.market})

    def commitment(self, firm: dict[str, Any], kind: str | None = None, made: dt.date | None = None,
                   outcome: str | None = None, checked: dt.date | None = None) -> None:
        rng, ref = self.rng, self.ref
        kind = kind or rng.choices(tuple(COMMITMENT_WEIGHTS), tuple(COMMITMENT_WEIGHTS.values()))[0]
        if made is None:
            made = self.day_between(max(firm["founded"], ref - dt.timedelta(days=3 * 365)), ref - dt.timedelta(days=5))
            if ref - made < dt.timedelta(days=90):
                outcome = "2"
            else:
                outcome = rng.choices(("1", "0", "2"), (85, 8, 7))[0]
            checked = None
            if outcome != "2" or rng.random() < 0.5:
                checked = min(made + dt.timedelta(days=rng.randrange(30, 365)), ref - dt.timedelta(days=1))
        licence = firm["licence"] or "营业执照变更登记"
        matter, content = COMMITMENTS[kind]
        self.rows["market"]["xycn"].append({
            "tyshxydm": firm["uscc"], "cnbh": self.number("XYCN150102{year}{n:05d}", made.year), "cnlx": kind,
            "cnsx": matter.format(licence=licence), "cnnr": content.format(licence=licence), "cnrq": _ymd(made),
            "sldw": ASSOCIATION if kind == "3" else self.market, "lyzt": outcome or "2",
            "hcrq": _ymd(checked) if checked else None, "sjdw": self.market})

    def tax_case(self, key: str, name: str, published: dt.date | None = None, natural: bool = False) -> None:
        rng = self.rng
        published = published or self.day_between(self.ref - dt.timedelta(days=5 * 365), self.ref - dt.timedelta(days=5))
        nature, facts, basis = NATURAL_TAX_CASE if natural else rng.choice(TAX_CASES)
        amount = rng.randrange(1_000_000, 30_000_000, 100) if not natural else rng.randrange(1_000_000, 8_000_000, 100)
        fine = amount if nature == "偷税" else amount // 2
        self.rows["tax"]["major_tax_case"].append({
            "case_no": self.number("呼税稽罚〔{year}〕{n}号", published.year), "taxpayer_id": key, "taxpayer_name": name,
            "case_nature": nature, "main_facts": facts.format(amount=amount),
            "law_and_penalty": basis.format(amount=amount, fine=fine), "amount_yuan": f"{amount}.00",
            "inspection_office": rng.choice(INSPECTION_OFFICES), "published_on": published.isoformat(),
            "publish_until": add_months(published, 36).isoformat()})
