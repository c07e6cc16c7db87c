"""The demo district: four department databases for Xincheng District (150102), built from a seed.

`build_demo_district(data_dir)` writes `<data_dir>/departments/{market,tax,environment,courts}.db`,
each in its department's own layout (`LAYOUTS`; docs/connectors.md describes them), and
`<data_dir>/connectors.toml` from the template beside this module (never over an existing one,
unless it is an unedited copy of an earlier template: see `EARLIER_TEMPLATES`).
The same seed and counts give byte-identical files: every date is relative to the fixed
`REFERENCE_DATE`, never the clock. `departments/manifest.json` records what was built (and the
`FORMAT` it was built in); a later call with the same parameters and format reuses it.
`DemoDistrict.samples` names subjects that tests and the README rely on, each guaranteed by
construction (not by chance). The credit lists (abnormal operations, credit commitments, major
tax violations) come from `credit_lists.py`, drawn last with a random generator of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

from xinlian.policies.rows import add_months
from xinlian.schema.identifiers import USCC_ALPHABET, id_check_char, uscc_check_char

from .court_service import court_api_key
from .credit_lists import CreditLists
from .hr_drop import HR_SAMPLES, write_hr_drop

# 2: the 2021 双公示 items on licences and penalties; abnormal operations, credit commitments,
# major tax violations and wage arrears (a district built in format 1 is rebuilt);
# 3: penalties decided after the review queue's `since` (NEW_RECORDS, for its walkthrough)
FORMAT = 3
REFERENCE_DATE = dt.date(2026, 11, 1)
# penalties decided after the shipped policy's `[cases.review] since` (2026-12-01), so that the
# review before publication has new records to show (docs/cases.md): one department per way a
# record becomes publishable — environment (a reviewer), tax (after 24 hours), market (trusted)
NEW_RECORDS = (("environment", dt.date(2026, 12, 1)), ("tax", dt.date(2026, 12, 1)), ("market", dt.date(2026, 12, 2)))
LATE_SAMPLES = ("new_penalties",)  # drawn after the wage arrears, on a firm that is no other sample
DIVISION = "150102"
TEMPLATE = Path(__file__).with_name("connectors.toml")
# sha256 (see `_template_digest`) of the connectors.toml templates shipped before this one: a data
# directory's copy that is still one of them — never edited, save the court's port that `xinlian
# demo` writes at each start — is replaced by the current template, so that an old district's
# hub learns the families added since; any other file is an operator's and is kept
EARLIER_TEMPLATES = frozenset({
    "46bb0268f0926acc6fa6a50a4d75b6b6efb2d22483eef394ac59dd649b6aac78",
    "b432e633f5d0812435bf07d7febeff74ebba711fa337971a456672324752c232",
    "aeae45e537f2f5f1c21f2f853c90ba0af70973b67e592c496ad5ac99846ee462",
    "ce1a1aa43aab8e2472f99b8063607bbdd33dcda6963ae32ae6bf691956c85b9e",
    "859f84efdb0b33a3875115cae861e31601933e1fd2631d8c6e1408d45162dce7",  # before the court's key paging (issue 11)
})
LEGAL_SAMPLES = ("judgment_debtor", "a_level_taxpayer", "expired_penalty", "severe_penalty", "minor_penalty",
                 "multi_department_penalties", "honored", "revoked", "clean", "awaiting_review")
NATURAL_SAMPLES = ("natural_debtor", "natural_penalty", "natural_clean")

MARKET, TAX = "新城区市场监督管理局", "国家税务总局呼和浩特市新城区税务局"
ENVIRONMENT, COURT = "呼和浩特市生态环境局新城区分局", "内蒙古自治区呼和浩特市新城区人民法院"

# Each department's own tables, as its system declares them (column order = insertion order).
LAYOUTS: dict[str, dict[str, str]] = {
    "market": {  # 企业基本信息, 行政许可, 行政处罚, 守信激励, 经营异常名录, 信用承诺
        "qy_jbxx": "tyshxydm TEXT PRIMARY KEY, qymc TEXT NOT NULL, fddbr TEXT, fddbr_zjhm TEXT, djzt INTEGER, clrq TEXT, "
                   "zs TEXT, hydm TEXT, zczb INTEGER, lxdh TEXT, djjg TEXT",
        # 行政许可 with the 2021 双公示 items: 相对人名称/类别, 法定代表人 and its document, 文书名称, 当前状态, 来源单位代码, 备注
        "xzxk": "id INTEGER PRIMARY KEY, tyshxydm TEXT, xdrmc TEXT, xdrlb TEXT, fddbr TEXT, fddbr_zjlx TEXT, fddbr_zjhm TEXT, "
                "xkwsmc TEXT, xkjdswh TEXT, xkzsmc TEXT, xklb TEXT, xkbh TEXT, xknr TEXT, xkjdrq TEXT, yxqz TEXT, yxqzhi TEXT, "
                "xkjg TEXT, xkjgdm TEXT, dqzt TEXT, sjdw TEXT, sjdwdm TEXT, bz TEXT",
        # 行政处罚: dsr_zjhm is the party's key (USCC or resident ID); tyshxydm / zjlx+zjhm say which
        "xzcf": "id INTEGER PRIMARY KEY, dsr_zjhm TEXT, dsrmc TEXT, dsrlb TEXT, tyshxydm TEXT, fddbr TEXT, fddbr_zjlx TEXT, "
                "fddbr_zjhm TEXT, zjlx TEXT, zjhm TEXT, cfjdswh TEXT, wfxwlx TEXT, wfss TEXT, cfyj TEXT, "
                "cflb TEXT, cfnr TEXT, fkje INTEGER, mswfsdje INTEGER, zkdxzz TEXT, cfjdrq TEXT, cfyxq TEXT, cfjg TEXT, "
                "cfjgdm TEXT, sjdw TEXT, sjdwdm TEXT, bz TEXT, sxcd TEXT, gsjzq TEXT, bary TEXT, sfyx INTEGER",
        "syxjl": "id INTEGER PRIMARY KEY, tyshxydm TEXT, rymc TEXT, rdjg TEXT, rdrq TEXT, yxqzhi TEXT, sjdw TEXT",
        # 经营异常名录: 列入决定书文号, 列入原因代码/日期/机关, 移出原因代码/日期/机关 (NULL while listed)
        "jyycml": "id INTEGER PRIMARY KEY, tyshxydm TEXT, qymc TEXT, lrjdswh TEXT, lryy TEXT, lrrq TEXT, zcjdjg TEXT, "
                  "ycyy TEXT, ycrq TEXT, ycjdjg TEXT, sjdw TEXT",
        # 信用承诺: 承诺编号, 类型代码, 承诺事项/内容, 日期, 受理单位, 履约状态代码, 核查日期
        "xycn": "id INTEGER PRIMARY KEY, tyshxydm TEXT, cnbh TEXT, cnlx TEXT, cnsx TEXT, cnnr TEXT, cnrq TEXT, sldw TEXT, "
                "lyzt TEXT, hcrq TEXT, sjdw TEXT",
    },
    "tax": {
        "taxpayer_credit_rating": "id INTEGER PRIMARY KEY, taxpayer_id TEXT, taxpayer_name TEXT, rating_year INTEGER, "
                                  "credit_grade TEXT, rated_on TEXT, annual_tax_paid DECIMAL(18,2), tax_office TEXT",
        "tax_penalty": "id INTEGER PRIMARY KEY, taxpayer_id TEXT, taxpayer_name TEXT, document_no TEXT, violation_type TEXT, "
                       "violation_facts TEXT, legal_basis TEXT, penalty_type TEXT, penalty_detail TEXT, "
                       "fine_yuan DECIMAL(18,2), confiscated_yuan DECIMAL(18,2), decided_on TEXT, authority_name TEXT, "
                       "authority_code TEXT, severity TEXT, publicity_until TEXT, officer TEXT",
        # 重大税收违法失信主体: the cases published, each for three years from its publication
        "major_tax_case": "id INTEGER PRIMARY KEY, case_no TEXT, taxpayer_id TEXT, taxpayer_name TEXT, case_nature TEXT, "
                          "main_facts TEXT, law_and_penalty TEXT, amount_yuan DECIMAL(18,2), inspection_office TEXT, "
                          "published_on TEXT, publish_until TEXT",
    },
    "environment": {
        "env_punishment": "punish_id INTEGER PRIMARY KEY, credit_code TEXT, party_name TEXT, punish_no TEXT, "
                          "illegal_type TEXT, illegal_facts TEXT, punish_basis TEXT, punish_type TEXT, punish_content TEXT, "
                          "fine_wan REAL, confiscate_wan REAL, decision_time TEXT, punish_org TEXT, punish_org_code TEXT, "
                          "data_source TEXT, credit_level TEXT, public_end TEXT, audit_state TEXT",
        "env_permit": "permit_id INTEGER PRIMARY KEY, credit_code TEXT, approve_no TEXT, permit_name TEXT, permit_type TEXT, "
                      "permit_no TEXT, permit_scope TEXT, approve_date TEXT, valid_begin TEXT, valid_end TEXT, "
                      "issue_org TEXT, issue_org_code TEXT, data_source TEXT, is_valid INTEGER",
        "env_credit_honor": "honor_id INTEGER PRIMARY KEY, credit_code TEXT, honor_title TEXT, award_org TEXT, "
                            "award_date TEXT, expire_date TEXT, data_source TEXT",
    },
    "courts": {  # 失信被执行人: 案号, 执行法院, 被执行人名称, 证件号码, 立案/发布日期, 执行依据, 义务, 履行情况, 失信情形, 状态
        "sxbzxr": "id INTEGER PRIMARY KEY, ah TEXT, zxfy TEXT, bzxrmc TEXT, zjhm TEXT, larq TEXT, fbrq TEXT, zxyjwh TEXT, "
                  "yw TEXT, lxqk TEXT, sxxw TEXT, zt TEXT",
    },
}
INDEXES = {"market": ("xzxk(tyshxydm)", "xzcf(dsr_zjhm)", "syxjl(tyshxydm)", "jyycml(tyshxydm)", "xycn(tyshxydm)"),
           "tax": ("taxpayer_credit_rating(taxpayer_id)", "tax_penalty(taxpayer_id)", "major_tax_case(taxpayer_id)"),
           "environment": ("env_punishment(credit_code)", "env_permit(credit_code)", "env_credit_honor(credit_code)"),
           "courts": ("sxbzxr(zjhm)",)}

TRADE_NAME_CHARS = "鑫瑞恒泰华盛通达宏远德信诚源丰润金兴昌隆安康明辉伟博嘉祥福海天宇峰青禾卓越汇鼎正"
# name word, industry code (GB/T 4754), market licence, environment permit likely
INDUSTRIES = (("商贸", "F51", None, False), ("超市", "F52", "食品经营许可证", False), ("餐饮管理", "H62", "食品经营许可证", False),
              ("建筑工程", "E47", None, True), ("物流", "G54", None, False), ("网络科技", "I65", None, False),
              ("乳业", "C14", "食品生产许可证", True), ("房地产开发", "K70", None, False), ("文化传媒", "L72", "广告发布登记", False),
              ("汽车维修", "O81", None, True), ("大药房", "F52", "药品经营许可证", False), ("装饰工程", "E50", None, False),
              ("农牧业科技", "A03", None, True))
STREETS = ("新华东街", "兴安北路", "成吉思汗大街", "海拉尔东路", "中山东路", "东影南路", "呼伦北路", "北垣东街", "丁香路", "光华街")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗云白乌"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "桂兰",
         "巴特尔", "其木格", "苏日娜", "额尔敦", "那仁", "志刚", "海峰", "晓东")
# (violation type, facts, legal basis, penalty category) per department
VIOLATIONS = {
    "market": (("销售不合格产品", "销售经抽检不合格的商品", "《中华人民共和国产品质量法》第四十九条", "罚款;没收违法所得"),
               ("发布虚假广告", "在门店及网络平台发布虚假宣传内容", "《中华人民共和国广告法》第五十五条", "罚款"),
               ("未按规定公示年度报告", "未在规定期限内公示年度报告", "《企业信息公示暂行条例》第十八条", "警告"),
               ("经营超过保质期食品", "经营超过保质期的预包装食品", "《中华人民共和国食品安全法》第一百二十四条", "罚款;没收违法所得"),
               ("价格违法", "不执行政府指导价、明码标价不规范", "《中华人民共和国价格法》第四十二条", "罚款")),
    "tax": (("未按规定期限办理纳税申报", "未按照规定的期限办理纳税申报和报送纳税资料", "《中华人民共和国税收征收管理法》第六十二条", "罚款"),
            ("偷税", "进行虚假纳税申报，少缴增值税", "《中华人民共和国税收征收管理法》第六十三条", "罚款"),
            ("虚开发票", "为他人开具与实际经营业务情况不符的发票", "《中华人民共和国发票管理办法》第三十五条", "罚款;没收违法所得")),
    "environment": (("超标排放大气污染物", "锅炉废气颗粒物浓度超过排放标准", "《中华人民共和国大气污染防治法》第九十九条", "罚款"),
                    ("未批先建", "建设项目环境影响评价文件未经批准擅自开工建设", "《中华人民共和国环境影响评价法》第三十一条", "罚款"),
                    ("危险废物处置不当", "将废机油等危险废物混入生活垃圾", "《中华人民共和国固体废物污染环境防治法》第一百一十二条", "罚款"),
                    ("露天焚烧", "在人口集中地区露天焚烧垃圾", "《中华人民共和国大气污染防治法》第一百一十九条", "罚款")),
}
NATURAL_VIOLATIONS = {"market": ("无照经营", "未依法取得营业执照从事经营活动", "《无证无照经营查处办法》第十三条", "罚款"),
                      "environment": VIOLATIONS["environment"][3]}
SEVERITY_CODES = {"market": {"轻微": "1", "一般": "2", "严重": "3"}, "tax": {"轻微": "minor", "一般": "ordinary", "严重": "serious"},
                  "environment": {"轻微": "L", "一般": "M", "严重": "H"}}
# Subjects registered by authorities other than market regulation (USCC position 1-2): they are
# not in the market registry, yet departments hold records on them (issue 9).
OTHER_AUTHORITIES = (("51", "呼和浩特市新城区{}商会"), ("52", "呼和浩特市新城区{}养老服务中心"),
                     ("12", "呼和浩特市新城区{}社区卫生服务中心"), ("Y1", "呼和浩特市新城区{}村股份经济合作社"))
# Residents with long Mongolian and Uyghur transliterated names (masked after the first character).
LONG_NAMES = ("乌云其木格", "阿依古丽·买买提", "其其格玛", "额尔德尼巴雅尔", "孟和巴特尔", "古丽尼格尔·艾买提")
SEVERITY_MONTHS = {"轻微": ((3,), (1,)), "一般": ((3, 6, 12), (1, 3, 6)), "严重": ((12, 24, 36), (1, 2, 7))}


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _cn(day: dt.date) -> str:
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


@dataclass(frozen=True)
class DemoDistrict:
    """What `build_demo_district` built (or found): paths, counts and named example subjects."""

    data_dir: Path
    departments_dir: Path
    databases: dict[str, Path]  # "market" | "tax" | "environment" | "courts" → SQLite file
    connectors_path: Path
    manifest_path: Path
    seed: int
    legal_persons: int
    natural_persons: int
    reference_date: dt.date
    samples: dict[str, str]  # sample name → USCC (legal persons) or resident ID ("natural_*")
    reused: bool


class _District:
    """The generator's working state: subjects and the rows of every department table."""

    def __init__(self, seed: int, legal: int, natural: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rows: dict[str, dict[str, list[dict[str, Any]]]] = {db: {t: [] for t in ts} for db, ts in LAYOUTS.items()}
        self.numbers: dict[str, int] = {}
        self.authority = {db: self.uscc("11") for db in ("market", "tax", "environment")}
        self.people = self.natural_persons(natural)
        self.firms = self.legal_persons(legal)
        self.by_uscc = {firm["uscc"]: firm for firm in self.firms}

    # ---- identifiers and subjects ------------------------------------------------------
    def uscc(self, prefix: str, used: set[str] | None = None) -> str:
        """A valid USCC: authority+category, 150102, 9-char organisation code (GB 11714 check), check."""
        while True:
            body = "MA" + "".join(self.rng.choice(USCC_ALPHABET) for _ in range(6))
            total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2)))
            check = {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))
            first17 = prefix + DIVISION + body + check
            code = first17 + uscc_check_char(first17)
            if used is None or code not in used:
                return code

    def natural_persons(self, count: int) -> list[dict[str, str]]:
        people: list[dict[str, str]] = []
        used: set[str] = set()
        while len(people) < count:
            born = dt.date(1950, 1, 1) + dt.timedelta(days=self.rng.randrange(20089))  # up to 2004-12-31
            first17 = f"{DIVISION}{born:%Y%m%d}{self.rng.randrange(1, 1000):03d}"
            code = first17 + id_check_char(first17)
            if code not in used:
                used.add(code)
                people.append({"id": code, "name": self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)})
        return people

    def legal_persons(self, count: int) -> list[dict[str, Any]]:
        firms: list[dict[str, Any]] = []
        codes: set[str] = set()
        names: set[str] = set()
        adults = [p for p in self.people if p["id"][6:10] <= "1990"] or self.people
        while len(firms) < count:
            word, industry, licence, permits = self.rng.choice(INDUSTRIES)
            size = 2 if len(names) < 1200 * len(INDUSTRIES) else 3
            name = f"呼和浩特市新城区{''.join(self.rng.sample(TRADE_NAME_CHARS, size))}{word}有限公司"
            if name in names:
                continue
            code = self.uscc("91", codes)
            codes.add(code)
            names.add(name)
            status = self.rng.choices((1, 2, 3), (85, 7, 8))[0]
            founded = dt.date(1995, 1, 1) + dt.timedelta(days=self.rng.randrange((REFERENCE_DATE - dt.date(1995, 1, 1)).days))
            firms.append({"uscc": code, "name": name, "industry": industry, "licence": licence, "permits": permits,
                          "status": status, "founded": founded, "rep": self.rng.choice(adults)})
        return firms

    def number(self, pattern: str, year: int) -> str:
        counter = self.numbers[pattern + str(year)] = self.numbers.get(pattern + str(year), 0) + 1
        return pattern.format(year=year, n=counter)

    def day_between(self, start: dt.date, end: dt.date) -> dt.date:
        return start + dt.timedelta(days=self.rng.randrange(max(1, (end - start).days)))

    # ---- registration, tax ratings, licences, honours ------------------------------------
    def register(self, firm: dict[str, Any]) -> None:
        rng = self.rng
        self.rows["market"]["qy_jbxx"].append({
            "tyshxydm": firm["uscc"], "qymc": firm["name"], "fddbr": firm["rep"]["name"], "fddbr_zjhm": firm["rep"]["id"],
            "djzt": firm["status"], "clrq": _ymd(firm["founded"]),
            "zs": f"内蒙古自治区呼和浩特市新城区{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
            "hydm": firm["industry"], "zczb": rng.choice((10, 30, 50, 100, 200, 500, 1000, 5000)) * 10000,
            "lxdh": f"0471-{rng.randrange(1000000, 9999999)}", "djjg": MARKET})

    def rate(self, firm: dict[str, Any], grades: tuple[str, ...] | None = None) -> None:
        for i, year in enumerate((2023, 2024, 2025)):
            if firm["founded"].year > year:
                continue
            if grades:
                grade = grades[i]
            elif firm["founded"].year >= year - 1:
                grade = "M"  # newly established taxpayers are rated M
            else:
                grade = self.rng.choices("ABMCD", (17, 45, 20, 12, 6))[0]
            paid = self.rng.randrange(2000, 3000000) + self.rng.randrange(100) / 100
            self.rows["tax"]["taxpayer_credit_rating"].append({
                "taxpayer_id": firm["uscc"], "taxpayer_name": firm["name"], "rating_year": year, "credit_grade": grade,
                "rated_on": dt.date(year + 1, 4, self.rng.randrange(10, 26)).isoformat(),
                "annual_tax_paid": f"{paid:.2f}", "tax_office": TAX})

    def license(self, firm: dict[str, Any]) -> None:
        start = self.day_between(max(firm["founded"], REFERENCE_DATE - dt.timedelta(days=1800)), REFERENCE_DATE)
        name = firm["licence"] or self.rng.choice(("食品经营许可证", "特种设备使用登记", "广告发布登记"))
        category = {"食品经营许可证": "1", "食品生产许可证": "4", "药品经营许可证": "4"}.get(name, "5")
        self.rows["market"]["xzxk"].append({
            "tyshxydm": firm["uscc"], "xkjdswh": self.number("新市监许〔{year}〕{n}号", start.year), "xkzsmc": name,
            "xklb": category, "xkbh": f"JY{DIVISION}{self.rng.randrange(10**7):07d}", "xknr": f"{name}：{firm['name']}",
            "xkjdrq": _ymd(start), "yxqz": _ymd(start), "yxqzhi": _ymd(add_months(start, 60)), "xkjg": MARKET,
            "xkjgdm": self.authority["market"], "sjdw": MARKET,
            # the 2021 双公示 items, from what the registry knows (no random draw: the rest stays as it was)
            "xdrmc": firm["name"], "xdrlb": "1", "fddbr": firm["rep"]["name"], "fddbr_zjlx": "01",
            "fddbr_zjhm": firm["rep"]["id"], "xkwsmc": "准予行政许可决定书", "dqzt": "1" if firm["status"] == 1 else "2",
            "sjdwdm": self.authority["market"], "bz": None if firm["status"] == 1 else "企业已吊销或注销营业执照，许可失效"})

    def permit(self, firm: dict[str, Any], valid: bool = True) -> None:
        start = self.day_between(REFERENCE_DATE - dt.timedelta(days=1500), REFERENCE_DATE)
        self.rows["environment"]["env_permit"].append({
            "credit_code": firm["uscc"], "approve_no": self.number("呼环新许〔{year}〕{n}号", start.year),
            "permit_name": "排污许可证", "permit_type": "核准", "permit_no": f"{firm['uscc']}001P",
            "permit_scope": "大气污染物、水污染物排放", "approve_date": start.isoformat(), "valid_begin": start.isoformat(),
            "valid_end": add_months(start, 60).isoformat(), "issue_org": ENVIRONMENT,
            "issue_org_code": self.authority["environment"], "data_source": ENVIRONMENT, "is_valid": int(valid)})

    def honor(self, firm: dict[str, Any], db: str, expired: bool = False) -> None:
        award = self.day_between(REFERENCE_DATE - dt.timedelta(days=900), REFERENCE_DATE)
        if expired:  # valid for 24 (market) or 36 months: awarded earlier than that, it has expired
            award = self.day_between(REFERENCE_DATE - dt.timedelta(days=1500), REFERENCE_DATE - dt.timedelta(days=1200))
        if db == "market":
            self.rows["market"]["syxjl"].append({"tyshxydm": firm["uscc"], "rymc": "守合同重信用企业", "rdjg": MARKET,
                                                 "rdrq": _ymd(award), "yxqzhi": _ymd(add_months(award, 24)), "sjdw": MARKET})
        else:
            self.rows["environment"]["env_credit_honor"].append({
                "credit_code": firm["uscc"], "honor_title": "环保诚信企业", "award_org": ENVIRONMENT,
                "award_date": award.isoformat(), "expire_date": add_months(award, 36).isoformat(), "data_source": ENVIRONMENT})

    # ---- penalties and judgment debtors --------------------------------------------------
    def penalty(self, db: str, key: str, party: str, severity: str, decided: dt.date | None = None, months: int | None = None,
                natural: bool = False, withdrawn: bool = False, since: dt.date = dt.date(1995, 1, 1),
                reviewed: bool = True) -> None:
        rng = self.rng
        decided = decided or self.day_between(max(since, REFERENCE_DATE - dt.timedelta(days=1460)), REFERENCE_DATE)
        choices, weights = SEVERITY_MONTHS[severity]
        end = add_months(decided, months or rng.choices(choices, weights)[0])
        kind, facts, basis, category = NATURAL_VIOLATIONS[db] if natural else rng.choice(VIOLATIONS[db])
        if severity == "轻微" and ("警告" in category or natural):
            category, fine = "警告", 0
        else:
            low, high = {"轻微": (500, 5000), "一般": (5000, 100000), "严重": (100000, 2000000)}[severity]
            fine = rng.randrange(low, high, 100) if not natural else rng.randrange(200, 5000, 100)
        confiscated = rng.randrange(10000, 500000, 100) if "没收" in category and severity == "严重" else 0
        category = category if confiscated or category == "警告" else "罚款"
        content = f"罚款人民币{fine}元" + (f"，没收违法所得人民币{confiscated}元" if confiscated else "") if fine else "警告"
        code, org = SEVERITY_CODES[db][severity], {"market": MARKET, "tax": TAX, "environment": ENVIRONMENT}[db]
        pattern = {"market": "新市监处罚〔{year}〕{n}号", "tax": "呼新税罚〔{year}〕{n}号", "environment": "呼环新罚〔{year}〕{n}号"}[db]
        number = self.number(pattern, decided.year)
        handlers = f"{rng.choice(SURNAMES)}{rng.choice(GIVEN)}、{rng.choice(SURNAMES)}{rng.choice(GIVEN)}"
        if db == "market":
            firm = self.by_uscc.get(key)  # a registered enterprise: its legal representative is on file
            self.rows[db]["xzcf"].append({
                "dsr_zjhm": key, "dsrmc": party, "cfjdswh": number, "wfxwlx": kind, "wfss": facts, "cfyj": basis,
                "cflb": category, "cfnr": content, "fkje": fine, "mswfsdje": confiscated, "cfjdrq": _ymd(decided),
                "cfjg": org, "cfjgdm": self.authority[db], "sjdw": org, "sxcd": code, "gsjzq": _ymd(end),
                "bary": handlers, "sfyx": 0 if withdrawn else 1,
                # the 2021 双公示 items (no random draw: the rest of the district stays as it was)
                "dsrlb": "2" if natural else "1", "tyshxydm": None if natural else key,
                "fddbr": firm["rep"]["name"] if firm else None, "fddbr_zjlx": "01" if firm else None,
                "fddbr_zjhm": firm["rep"]["id"] if firm else None,
                "zjlx": "01" if natural else None, "zjhm": key if natural else None,
                "cfyxq": _ymd(decided + dt.timedelta(days=15) if fine else decided),  # a fine is due within 15 days
                "sjdwdm": self.authority[db], "bz": None})
        elif db == "tax":
            self.rows[db]["tax_penalty"].append({
                "taxpayer_id": key, "taxpayer_name": party, "document_no": number, "violation_type": kind, "violation_facts": facts,
                "legal_basis": basis, "penalty_type": category, "penalty_detail": content, "fine_yuan": f"{fine}.00",
                "confiscated_yuan": f"{confiscated}.00", "decided_on": decided.isoformat(), "authority_name": org,
                "authority_code": self.authority[db], "severity": code, "publicity_until": end.isoformat(), "officer": handlers})
        else:
            at = f"{decided.isoformat()} {rng.randrange(8, 18):02d}:{rng.randrange(60):02d}:00"
            self.rows[db]["env_punishment"].append({
                "credit_code": key, "party_name": party, "punish_no": number, "illegal_type": kind, "illegal_facts": facts,
                "punish_basis": basis, "punish_type": category, "punish_content": content, "fine_wan": fine / 10000,
                "confiscate_wan": confiscated / 10000, "decision_time": at, "punish_org": org,
                "punish_org_code": self.authority[db], "data_source": org, "credit_level": code, "public_end": end.isoformat(),
                "audit_state": "已审核" if reviewed else "待审核"})

    def debtor(self, key: str, name: str, listed: bool = True, filed: dt.date | None = None) -> None:
        rng = self.rng
        filed = filed or self.day_between(REFERENCE_DATE - dt.timedelta(days=1460), REFERENCE_DATE - dt.timedelta(days=120))
        published = filed + dt.timedelta(days=rng.randrange(30, 120))
        self.rows["courts"]["sxbzxr"].append({
            "ah": self.number("（{year}）内0102执{n}号", filed.year), "zxfy": COURT, "bzxrmc": name, "zjhm": key,
            "larq": _cn(filed), "fbrq": _cn(published),
            "zxyjwh": f"（{filed.year - 1}）内0102民初{rng.randrange(100, 9999)}号",
            "yw": f"支付货款及利息共计人民币{rng.randrange(2, 500) * 1000}元", "lxqk": rng.choice("01"),
            "sxxw": rng.choice(("有履行能力而拒不履行生效法律文书确定义务", "违反财产报告制度", "违反限制消费令")),
            "zt": "1" if listed else "0"})

    # ---- the district as a whole ----------------------------------------------------------
    def populate(self) -> dict[str, str]:
        """Random records for everyone, then the named samples' records; returns the samples."""
        rng = self.rng
        planted = {name: self.firms[i] for name, i in zip(LEGAL_SAMPLES, rng.sample(range(len(self.firms)), len(LEGAL_SAMPLES)))}
        residents = {name: self.people[i] for name, i in zip(NATURAL_SAMPLES, rng.sample(range(len(self.people)), len(NATURAL_SAMPLES)))}
        for firm in planted.values():
            firm["status"], firm["founded"] = 1, dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(2400))
        planted["revoked"]["status"] = 2
        special = {f["uscc"] for f in planted.values()} | {p["id"] for p in residents.values()}
        for firm in self.firms:
            self.register(firm)
            if firm["uscc"] not in special:
                self.random_records(firm)
        for person in self.people:
            if person["id"] not in special:
                self.random_natural_records(person)
        self.plant(planted, residents)
        self.other_subjects()
        lists = CreditLists(random.Random(self.seed * 1_000_003 + 2), REFERENCE_DATE, self.rows, self.number,
                            {"market": MARKET, "tax": TAX})
        listed = lists.populate([f for f in self.firms if f["uscc"] not in special],
                                [p for p in self.people if p["id"] not in special])
        return {name: subject["uscc"] for name, subject in planted.items()} | {
            name: person["id"] for name, person in residents.items()} | listed

    def new_records(self, taken: Collection[str]) -> dict[str, str]:
        """Penalties decided in December 2026 (`NEW_RECORDS`), after the review queue's `since`,
        on one active firm that is no other sample (`taken`: every sample, the wage arrears'
        too) — drawn last with a random generator of its own, so the rest of the district is as
        it was."""
        district_rng, self.rng = self.rng, random.Random(self.seed * 1_000_003 + 3)
        try:
            firms = [f for f in self.firms if f["status"] == 1 and f["uscc"] not in taken] or self.firms
            firm = self.rng.choice(firms)
            for db, decided in NEW_RECORDS:
                self.penalty(db, firm["uscc"], firm["name"], "一般", decided=decided, months=12)
        finally:
            self.rng = district_rng
        return {"new_penalties": firm["uscc"]}

    def random_records(self, firm: dict[str, Any]) -> None:
        rng, key, name = self.rng, firm["uscc"], firm["name"]
        if firm["status"] == 1:
            self.rate(firm)
            if rng.random() < 0.07:
                self.honor(firm, "market")
            if rng.random() < 0.04:
                self.honor(firm, "environment")
        for _ in range(rng.choices((0, 1, 2), (40, 45, 15) if firm["licence"] else (85, 13, 2))[0]):
            self.license(firm)
        if rng.random() < (0.5 if firm["permits"] else 0.03):
            self.permit(firm, valid=rng.random() > 0.1)
        for db, share in (("market", 0.12), ("tax", 0.06), ("environment", 0.08 if firm["permits"] else 0.03)):
            if rng.random() < share:
                for _ in range(rng.choices((1, 2), (80, 20))[0]):
                    severity = rng.choices(("轻微", "一般", "严重"), (35, 45, 20))[0]
                    self.penalty(db, key, name, severity, since=firm["founded"],
                                 withdrawn=db == "market" and rng.random() < 0.03)
        if rng.random() < 0.05:
            self.debtor(key, name)
        elif rng.random() < 0.01:
            self.debtor(key, name, listed=False)  # removed from the list after performance

    def random_natural_records(self, person: dict[str, str]) -> None:
        rng = self.rng
        for db, share in (("market", 0.05), ("environment", 0.03)):
            if rng.random() < share:
                self.penalty(db, person["id"], person["name"], rng.choice(("轻微", "一般")), natural=True)
        if rng.random() < 0.05:
            self.debtor(person["id"], person["name"])

    def plant(self, firms: dict[str, dict[str, Any]], people: dict[str, dict[str, str]]) -> None:
        ref, days = REFERENCE_DATE, dt.timedelta
        grades = {"a_level_taxpayer": "AAA", "clean": "BBB", "honored": "BAA"}
        for name, firm in firms.items():
            if name != "revoked":
                self.rate(firm, tuple(grades.get(name, "BBB")) if name in grades else None)
        self.debtor(firms["judgment_debtor"]["uscc"], firms["judgment_debtor"]["name"], filed=ref - days(400))
        self.license(firms["a_level_taxpayer"])
        f = firms["expired_penalty"]
        self.penalty("market", f["uscc"], f["name"], "一般", decided=ref - days(1200), months=12)
        f = firms["severe_penalty"]
        self.penalty("environment", f["uscc"], f["name"], "严重", decided=ref - days(150), months=36)
        f = firms["minor_penalty"]
        self.penalty("market", f["uscc"], f["name"], "轻微", decided=ref - days(30), months=3)
        f = firms["multi_department_penalties"]
        self.penalty("market", f["uscc"], f["name"], "一般", decided=ref - days(60), months=12)
        self.penalty("tax", f["uscc"], f["name"], "一般", decided=ref - days(100), months=12)
        self.penalty("environment", f["uscc"], f["name"], "严重", decided=ref - days(300), months=36)
        f = firms["awaiting_review"]  # entered at the bureau, not yet reviewed: not for the public
        self.penalty("environment", f["uscc"], f["name"], "一般", decided=ref - days(20), months=12, reviewed=False)
        self.honor(firms["honored"], "market")
        self.honor(firms["honored"], "environment")
        p = people["natural_debtor"]
        self.debtor(p["id"], p["name"], filed=ref - days(300))
        p = people["natural_penalty"]
        self.penalty("market", p["id"], p["name"], "一般", decided=ref - days(45), months=12, natural=True)

    def other_subjects(self) -> None:
        """Social organisations, public institutions and others, each with records at a department
        but no market registration; residents with long names; honours that have expired. Drawn
        after everything else, so the rest of the district is as before."""
        rng, ref, days = self.rng, REFERENCE_DATE, dt.timedelta
        used = {f["uscc"] for f in self.firms}
        for i, (prefix, pattern) in enumerate(OTHER_AUTHORITIES * 2):
            code = self.uscc(prefix, used)
            used.add(code)
            subject = {"uscc": code, "name": pattern.format("".join(rng.sample(TRADE_NAME_CHARS, 2)))}
            if i % 2 == 0:
                self.honor(subject, "environment")
            else:
                self.penalty("environment", code, subject["name"], "一般", decided=ref - days(40 + i), months=12)
        ids = {p["id"] for p in self.people}
        for i, name in enumerate(LONG_NAMES):
            while True:
                born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(14000))
                first17 = f"{DIVISION}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
                code = first17 + id_check_char(first17)
                if code not in ids:
                    break
            ids.add(code)
            person = {"id": code, "name": name}
            self.people.append(person)
            self.penalty("market", code, name, "一般", decided=ref - days(30 + 10 * i), months=12, natural=True)
        for firm in self.firms[:3]:  # honours awarded 3-4 years ago, expired: no longer a reason for trust
            self.honor(firm, "market", expired=True)

    def write(self, db: str, path: Path) -> None:
        """One department database, written to a temporary file and moved into place."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            for table, columns in LAYOUTS[db].items():
                conn.execute(f"CREATE TABLE {table} ({columns})")
                rows = self.rows[db][table]
                if rows:
                    names = [c.split()[0] for c in columns.split(", ") if c.split()[0] in rows[0]]
                    conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                     [tuple(row[n] for n in names) for row in rows])
            for index in INDEXES[db]:
                conn.execute(f"CREATE INDEX ix_{index.replace('(', '_').rstrip(')')} ON {index}")
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _template_digest(text: str) -> str:
    """sha256 of a connectors file with the court's loopback port put back as the template has it."""
    shipped = re.sub(r'(?m)^base_url = "http://127\.0\.0\.1:\d+"$', 'base_url = "http://127.0.0.1:0"', text)
    return hashlib.sha256(shipped.encode("utf-8")).hexdigest()


def _write_connectors(connectors_path: Path) -> None:
    """Copy the template to `connectors_path`, unless an operator's file is there (an unedited
    earlier template is not an operator's: it is replaced)."""
    if connectors_path.exists():
        text = connectors_path.read_bytes().decode("utf-8", errors="replace")
        if _template_digest(text) not in EARLIER_TEMPLATES:
            return  # an operator's edits (e.g. a PostgreSQL URL) are kept
    shutil.copyfile(TEMPLATE, connectors_path)


def _reusable(manifest_path: Path, wanted: dict[str, Any], departments: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in wanted.items()):
        return None
    if not all((departments / f"{db}.db").is_file() for db in LAYOUTS):
        return None
    return manifest


def build_demo_district(data_dir: Path, legal_persons: int = 2000, natural_persons: int = 500,
                        seed: int = 150102) -> DemoDistrict:
    """Build the demo district in `data_dir` (or reuse the one built there with these parameters)."""
    if legal_persons < len(LEGAL_SAMPLES) + 2 or natural_persons < len(NATURAL_SAMPLES):
        raise ValueError(f"the demo district needs at least {len(LEGAL_SAMPLES) + 2} legal persons "
                         f"and {len(NATURAL_SAMPLES)} natural persons")
    data_dir = Path(data_dir)
    departments = data_dir / "departments"
    manifest_path = departments / "manifest.json"
    wanted = {"format": FORMAT, "seed": seed, "legal_persons": legal_persons, "natural_persons": natural_persons,
              "reference_date": REFERENCE_DATE.isoformat()}
    manifest = _reusable(manifest_path, wanted, departments)
    reused = manifest is not None
    if manifest is None:
        departments.mkdir(parents=True, exist_ok=True)
        manifest_path.unlink(missing_ok=True)
        district = _District(seed, legal_persons, natural_persons)
        samples = district.populate()
        for db in LAYOUTS:
            district.write(db, departments / f"{db}.db")
        # the human resources bureau's spreadsheet exports (wage arrears leave the other samples alone)
        samples.update(write_hr_drop(data_dir, seed, exclude=set(samples.values())))
        samples.update(district.new_records(set(samples.values())))  # on a firm no sample is, wage arrears' included
        for db in sorted({db for db, _ in NEW_RECORDS}):
            district.write(db, departments / f"{db}.db")
        manifest = {**wanted, "samples": samples,
                    "tables": {db: {t: len(rows) for t, rows in ts.items()} for db, ts in district.rows.items()},
                    "sha256": {db: _sha256(departments / f"{db}.db") for db in LAYOUTS}}
        tmp = manifest_path.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, manifest_path)
    connectors_path = data_dir / "connectors.toml"
    _write_connectors(connectors_path)
    if not (data_dir / "drops" / "hr").is_dir():
        write_hr_drop(data_dir, seed, exclude={v for k, v in manifest["samples"].items() if k not in HR_SAMPLES + LATE_SAMPLES})
    court_api_key(data_dir)  # the court's REST API key (its connector reads it)
    return DemoDistrict(
        data_dir=data_dir, departments_dir=departments,
        databases={db: departments / f"{db}.db" for db in LAYOUTS},
        connectors_path=connectors_path, manifest_path=manifest_path, seed=seed,
        legal_persons=legal_persons, natural_persons=natural_persons, reference_date=REFERENCE_DATE,
        samples=dict(manifest["samples"]), reused=reused,
    )
