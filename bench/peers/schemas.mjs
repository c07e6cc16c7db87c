// The four department subgraphs of bench/peers.py: their SDL and resolvers.
//
// Each is an Apollo Federation v2 subgraph (built with @apollo/subgraph's buildSubgraphSchema)
// contributing one record family to the entity `Company @key(fields: "uscc")`; the market
// registry owns the root fields `company(uscc:)` and `companies(usccs:)`. Field names are those
// of Xinlian's catalogue (schema/catalogue.py) in camelCase, so the three gateways' answers
// compare without renaming; dates are ISO text, money is a Float in 10,000 yuan.
//
// Each subgraph also has a plain root field with a list argument for Xinlian's GraphQL
// connector (list mode): `companies(usccs:)` (market), `taxCredits(usccs:)`,
// `judgmentDebtors(usccs:)`, `penaltyRecords(usccs:)`. They return the same `Company` items, so
// the connector's `key = "uscc"` and `records = "<family field>"` read them; the last three are
// `@inaccessible`: they are composed into the supergraph but not exposed by Apollo or Hive.
//
// Data: `loadData(path)` reads the JSON written by bench/peers.py (generated there, once,
// deterministically) into one Map per family, keyed by USCC.

import { readFileSync } from 'node:fs';

const LINK =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@inaccessible"])';

const REGISTRATION = `
  type Registration {
    name: String
    legalRepresentative: String
    legalRepresentativeId: String
    status: String
    establishedDate: String
    address: String
    industry: String
    registeredCapital: Float
    contactPhone: String
  }`;

const TAX_CREDIT = `
  type TaxCredit {
    level: String
    year: Int
    evaluationDate: String
    taxPaid: Float
    authority: String
  }`;

const JUDGMENT_DEBTOR = `
  type JudgmentDebtorRecord {
    caseNumber: String
    court: String
    debtorName: String
    debtorIdNumber: String
    filingDate: String
    publishDate: String
    basisDocument: String
    obligation: String
    performance: String
    dishonestBehavior: String
    reviewStatus: String
  }`;

const PENALTY = `
  type Penalty {
    decisionNumber: String
    violationType: String
    facts: String
    legalBasis: String
    penaltyCategory: String
    content: String
    fineAmount: Float
    confiscationAmount: Float
    decisionDate: String
    authority: String
    authorityUscc: String
    dataSourceUnit: String
    severity: String
    publicityEndDate: String
    caseHandler: String
    reviewStatus: String
  }`;

/** Subgraph name → { typeDefs (SDL text), resolvers(data) }. */
export const SUBGRAPHS = {
  market: {
    typeDefs: `${LINK}
  type Query {
    company(uscc: String!): Company
    companies(usccs: [String!]!): [Company]!
  }
  type Company @key(fields: "uscc") {
    uscc: String!
    registration: Registration
  }
  ${REGISTRATION}`,
    resolvers: (data) => {
      const known = (uscc) => (data.registration.has(uscc) ? { uscc } : null);
      return {
        Query: {
          company: (_, { uscc }) => known(uscc),
          companies: (_, { usccs }) => usccs.map(known),
        },
        Company: {
          __resolveReference: (ref) => known(ref.uscc),
          registration: (c) => data.registration.get(c.uscc) ?? null,
        },
      };
    },
  },
  tax: {
    typeDefs: `${LINK}
  type Query {
    taxCredits(usccs: [String!]!): [Company]! @inaccessible
  }
  type Company @key(fields: "uscc") {
    uscc: String!
    taxCredit: TaxCredit
  }
  ${TAX_CREDIT}`,
    resolvers: (data) => ({
      Query: { taxCredits: (_, { usccs }) => usccs.map((uscc) => ({ uscc })) },
      Company: {
        __resolveReference: (ref) => ({ uscc: ref.uscc }),
        taxCredit: (c) => data.taxCredit.get(c.uscc) ?? null,
      },
    }),
  },
  courts: {
    typeDefs: `${LINK}
  type Query {
    judgmentDebtors(usccs: [String!]!): [Company]! @inaccessible
  }
  type Company @key(fields: "uscc") {
    uscc: String!
    judgmentDebtorRecords: [JudgmentDebtorRecord!]!
  }
  ${JUDGMENT_DEBTOR}`,
    resolvers: (data) => ({
      Query: { judgmentDebtors: (_, { usccs }) => usccs.map((uscc) => ({ uscc })) },
      Company: {
        __resolveReference: (ref) => ({ uscc: ref.uscc }),
        judgmentDebtorRecords: (c) => data.judgmentDebtorRecords.get(c.uscc) ?? [],
      },
    }),
  },
  penalties: {
    typeDefs: `${LINK}
  type Query {
    penaltyRecords(usccs: [String!]!): [Company]! @inaccessible
  }
  type Company @key(fields: "uscc") {
    uscc: String!
    penalties: [Penalty!]!
  }
  ${PENALTY}`,
    resolvers: (data) => ({
      Query: { penaltyRecords: (_, { usccs }) => usccs.map((uscc) => ({ uscc })) },
      Company: {
        __resolveReference: (ref) => ({ uscc: ref.uscc }),
        penalties: (c) => data.penalties.get(c.uscc) ?? [],
      },
    }),
  },
};

/** The generated records, one Map (USCC → record or list of records) per family. */
export function loadData(path) {
  const raw = JSON.parse(readFileSync(path, 'utf8'));
  const data = {
    registration: new Map(),
    taxCredit: new Map(),
    judgmentDebtorRecords: new Map(),
    penalties: new Map(),
  };
  for (const company of raw.companies) {
    for (const family of Object.keys(data)) {
      const value = company[family];
      if (value != null && !(Array.isArray(value) && value.length === 0)) data[family].set(company.uscc, value);
    }
  }
  return data;
}
