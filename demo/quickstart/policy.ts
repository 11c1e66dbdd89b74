import type { PolicyRuleConfig } from '../../src/config/schema.js';

/**
 * The demo policy for the CRM upstream: reps reach only the customers their
 * token says they own; managers reach everything; only managers export.
 * Everything else is denied by default.
 */
export const DEMO_POLICY: PolicyRuleConfig[] = [
  {
    id: 'reps-list-own',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'A rep lists only her own customers (owner must be herself)',
    tools: ['list_customers'],
    when: 'user.claims.role == "rep" && has(args.owner) && args.owner == user.sub',
  },
  {
    id: 'reps-read-own',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'A rep reads the customers she owns (a rep who owns none is not shown the tool)',
    tools: ['get_customer'],
    when: 'user.claims.role == "rep" && size(user.claims.customers) > 0 && args.customer_id in user.claims.customers',
  },
  {
    id: 'reps-update-own',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'A rep updates the customers she owns; writing needs the crm:write scope (step-up)',
    tools: ['update_customer'],
    when: 'user.claims.role == "rep" && size(user.claims.customers) > 0 && args.customer_id in user.claims.customers',
    scopes: ['crm:write'],
  },
  {
    id: 'managers-read-all',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'Managers list, read and export every customer',
    tools: ['list_customers', 'get_customer', 'export_all_customers'],
    when: 'user.claims.role == "manager"',
  },
  {
    id: 'managers-update-all',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'Managers update every customer, with the crm:write scope (step-up)',
    tools: ['update_customer'],
    when: 'user.claims.role == "manager"',
    scopes: ['crm:write'],
  },
  {
    id: 'account-summary-prompt',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'The account summary prompt only for the customers one may read',
    prompts: ['account_summary'],
    when: 'user.claims.role == "manager" || (user.claims.role == "rep" && size(user.claims.customers) > 0 && has(prompt.arguments.customer_id) && prompt.arguments.customer_id in user.claims.customers)',
  },
  {
    id: 'customer-resources',
    effect: 'allow',
    upstreams: ['crm'],
    description: 'Customer resources for their owner or a manager',
    resources: ['crm://customers/*'],
    when: 'user.claims.role == "manager" || (user.claims.role == "rep" && user.claims.customers.exists(c, resource.uri == "crm://customers/" + c))',
  },
];

/**
 * server-filesystem's tools and the arguments that name paths. Every one of
 * them must lie in the caller's own folder; other arguments (content, edits,
 * head/tail, sortBy, and the glob `pattern`/`excludePatterns`, which only
 * filter names found below `path`) do not reach other locations.
 */
export const FILESYSTEM_TOOL_PATHS = {
  read_file: ['path'],
  read_text_file: ['path'],
  read_media_file: ['path'],
  read_multiple_files: ['paths[]'],
  write_file: ['path'],
  edit_file: ['path'],
  create_directory: ['path'],
  list_directory: ['path'],
  list_directory_with_sizes: ['path'],
  directory_tree: ['path'],
  move_file: ['source', 'destination'],
  search_files: ['path'],
  get_file_info: ['path'],
  list_allowed_directories: [],
} as const satisfies Record<string, readonly string[]>;

/**
 * A user's folder is named by her subject, which must therefore be a plain
 * name: no separator, not `.`/`..`, not empty (an empty subject would make
 * the base the shared root itself).
 */
const PLAIN_SUBJECT = 'user.sub.matches("^[A-Za-z0-9_-][A-Za-z0-9._-]*$")';

/**
 * The policy for the quickstart's `files` upstream (server-filesystem serving
 * `root`, which holds one folder per user): a user may touch only paths in
 * `<root>/<her subject>`, checked by path_within — normalised, no `..`
 * escapes, symlinks resolved. A missing or non-string path argument denies.
 * Tools not named here (e.g. ones a later server version adds) stay denied.
 * `root` should be a real path (prepareUserFolders returns one): it is what
 * the server reports and what clients will send.
 */
export function filesystemPolicy(root: string): PolicyRuleConfig[] {
  // JSON string syntax is valid CEL string syntax: quotes and backslashes in `root` stay literal.
  const base = `${JSON.stringify(root)} + "/" + user.sub`;
  const own = (value: string) => `type(${value}) == string && path_within(${value}, ${base})`;
  const singlePath = Object.entries(FILESYSTEM_TOOL_PATHS)
    .filter(([, args]) => args.length === 1 && args[0] === 'path')
    .map(([tool]) => tool);
  return [
    {
      id: 'files-own-folder',
      effect: 'allow',
      description: 'A user reads, writes, lists and searches only below her own folder',
      upstreams: ['files'],
      tools: singlePath,
      when: `${PLAIN_SUBJECT} && has(args.path) && ${own('args.path')}`,
    },
    {
      id: 'files-own-folder-read-many',
      effect: 'allow',
      description: 'read_multiple_files only when every path is in her own folder',
      upstreams: ['files'],
      tools: ['read_multiple_files'],
      when: `${PLAIN_SUBJECT} && has(args.paths) && type(args.paths) == list && size(args.paths) > 0 && args.paths.all(p, ${own('p')})`,
    },
    {
      id: 'files-own-folder-move',
      effect: 'allow',
      description: 'move_file only from her own folder into her own folder',
      upstreams: ['files'],
      tools: ['move_file'],
      when: `${PLAIN_SUBJECT} && has(args.source) && has(args.destination) && ${own('args.source')} && ${own('args.destination')}`,
    },
    {
      id: 'files-allowed-directories',
      effect: 'allow',
      description: 'list_allowed_directories takes no path (it names the shared root, not its contents)',
      upstreams: ['files'],
      tools: ['list_allowed_directories'],
    },
  ];
}
