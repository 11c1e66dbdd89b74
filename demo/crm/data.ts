/**
 * The demo CRM's data: customer records and a small in-memory store.
 *
 * The store knows nothing about callers. Ownership (`owner` = the sales rep's
 * `sub`) is data here; deciding who may see which record is the gateway's job
 * in this version. A later version can enforce it in the tool layer (server.ts)
 * by comparing `owner` with the verified caller, without touching this file.
 */

export interface Customer {
  id: string;
  name: string;
  /** `sub` of the sales rep who owns the account (alice, bob). */
  owner: string;
  company: string;
  email: string;
  phone: string;
  notes: string;
  /** Fake figure, in USD; the kind of field a rep must not see for others' accounts. */
  annualRevenue: number;
}

/** Fields a caller may change with update_customer. */
export type CustomerPatch = Partial<Pick<Customer, 'name' | 'email' | 'phone' | 'notes'>>;

/** Short form returned by list_customers. */
export type CustomerSummary = Pick<Customer, 'id' | 'name' | 'owner'>;

const SEED: readonly Customer[] = [
  {
    id: 'c-100',
    name: 'Ada Whitfield',
    owner: 'alice',
    company: 'Northwind Traders',
    email: 'ada.whitfield@northwind.example',
    phone: '+1-555-0100',
    notes: 'Renewal due in Q3; prefers email.',
    annualRevenue: 1_250_000,
  },
  {
    id: 'c-101',
    name: 'Bruno Castell',
    owner: 'alice',
    company: 'Castell Logistics',
    email: 'bruno@castell-logistics.example',
    phone: '+1-555-0101',
    notes: 'Evaluating the enterprise tier.',
    annualRevenue: 830_000,
  },
  {
    id: 'c-102',
    name: 'Chiara Lenz',
    owner: 'alice',
    company: 'Lenz Optics',
    email: 'c.lenz@lenzoptics.example',
    phone: '+1-555-0102',
    notes: 'Asked for a security questionnaire.',
    annualRevenue: 2_400_000,
  },
  {
    id: 'c-103',
    name: 'Dmitri Okafor',
    owner: 'alice',
    company: 'Okafor & Sons',
    email: 'dmitri@okafor.example',
    phone: '+1-555-0103',
    notes: 'Churn risk: support tickets up.',
    annualRevenue: 410_000,
  },
  {
    id: 'c-104',
    name: 'Elena Marsh',
    owner: 'alice',
    company: 'Marsh Biolabs',
    email: 'elena.marsh@marshbio.example',
    phone: '+1-555-0104',
    notes: 'Champion left; new contact pending.',
    annualRevenue: 5_100_000,
  },
  {
    id: 'c-200',
    name: 'Farid Haddad',
    owner: 'bob',
    company: 'Haddad Foods',
    email: 'farid@haddadfoods.example',
    phone: '+1-555-0200',
    notes: 'Signed a 3-year deal.',
    annualRevenue: 3_300_000,
  },
  {
    id: 'c-201',
    name: 'Greta Sandoval',
    owner: 'bob',
    company: 'Sandoval Energy',
    email: 'greta.s@sandoval-energy.example',
    phone: '+1-555-0201',
    notes: 'Confidential: acquisition talks.',
    annualRevenue: 9_700_000,
  },
  {
    id: 'c-202',
    name: 'Hiro Tanaka',
    owner: 'bob',
    company: 'Tanaka Robotics',
    email: 'hiro@tanaka-robotics.example',
    phone: '+1-555-0202',
    notes: 'Pilot ends next month.',
    annualRevenue: 1_900_000,
  },
  {
    id: 'c-203',
    name: 'Ines Moreau',
    owner: 'bob',
    company: 'Moreau Design',
    email: 'ines@moreaudesign.example',
    phone: '+1-555-0203',
    notes: 'Discount approved by carol.',
    annualRevenue: 260_000,
  },
  {
    id: 'c-204',
    name: 'Jonas Berg',
    owner: 'bob',
    company: 'Berg Maritime',
    email: 'jonas.berg@bergmaritime.example',
    phone: '+1-555-0204',
    notes: 'Wants quarterly business reviews.',
    annualRevenue: 6_800_000,
  },
];

/** A fresh, independent copy of the seed records (tests must not share mutable state). */
export function seedCustomers(): Customer[] {
  return SEED.map((c) => ({ ...c }));
}

/** In-memory customer store. Every read returns copies, so callers cannot mutate it by accident. */
export class CustomerStore {
  readonly #byId: Map<string, Customer>;

  constructor(customers: Customer[] = seedCustomers()) {
    this.#byId = new Map(customers.map((c) => [c.id, { ...c }]));
  }

  list(): CustomerSummary[] {
    return [...this.#byId.values()].map(({ id, name, owner }) => ({ id, name, owner }));
  }

  get(id: string): Customer | undefined {
    const c = this.#byId.get(id);
    return c ? { ...c } : undefined;
  }

  all(): Customer[] {
    return [...this.#byId.values()].map((c) => ({ ...c }));
  }

  /** Applies the defined fields of `patch`; returns the updated record, or undefined for an unknown id. */
  update(id: string, patch: CustomerPatch): Customer | undefined {
    const c = this.#byId.get(id);
    if (!c) return undefined;
    for (const key of ['name', 'email', 'phone', 'notes'] as const) {
      const value = patch[key];
      if (value !== undefined) c[key] = value;
    }
    return { ...c };
  }
}

/** A store over a fresh copy of the seed data. */
export function createCustomerStore(): CustomerStore {
  return new CustomerStore(seedCustomers());
}
