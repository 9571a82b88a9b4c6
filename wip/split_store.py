#!/usr/bin/env python3
"""Splits kaltalk-store's chat.rs into inboxes.rs, contacts/{contact,visitors}.rs,
conversations.rs, messages.rs (+ Written into events.rs) and rewrites every path.
Deterministic: run on main and on each branch before merging. Fails on unknown items."""
import os, re, subprocess, sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else '.'
STORE = os.path.join(ROOT, 'crates/kaltalk-store/src')

PLACE = {
    'inboxes': ['struct Inbox', 'impl Inbox', 'enum InboxSettings', 'struct NewInbox', 'const INBOX_COLUMNS',
                'fn create_inbox', 'fn list_inboxes', 'fn get_inbox', 'fn find_inbox_by_token', 'fn update_inbox'],
    'contacts::contact': ['struct Contact', 'struct ContactFields', 'const CONTACT_COLUMNS', 'macro contact_identity',
                          'use contact_identity', 'fn identify_contact', 'fn get_contact'],
    'contacts::visitors': ['const VISITOR_IDLE_LIMIT', 'struct VisitorSession', 'enum SessionChoice', 'const SESSION_SELECT',
                           'fn find_visitor_session', 'fn touch_visitor_session', 'fn touch_visitor_session_seen',
                           'fn end_visitor_session'],
    'conversations': ['struct Conversation', 'struct ViewCounts', 'struct ConversationSummary', 'struct ConversationFilter',
                      'enum ConversationOrder', 'enum AssigneeFilter', 'const CONVERSATION_COLUMNS', 'const SUMMARY_SELECT',
                      'macro fetch_conversation', 'use fetch_conversation', 'macro reopen_conversation',
                      'use reopen_conversation', 'fn last_conversation_event', 'fn get_conversation',
                      'fn list_conversations', 'fn view_counts', 'fn set_conversation_status', 'fn assign_conversation',
                      'fn agent_saw', 'fn contact_saw'],
    'messages': ['struct Message', 'impl Message', 'struct Attachment', 'impl Attachment', 'struct NewAttachment',
                 'struct AgentWrite', 'struct EmailRecipients', 'impl EmailRecipients', 'const ATTACHMENT_COLUMNS',
                 'const MESSAGE_SELECT', 'macro fetch_message', 'use fetch_message', 'struct MessageDraft',
                 'macro insert_message', 'use insert_message', 'fn agent_writes', 'fn list_messages', 'fn get_attachment',
                 'fn get_attachment_by_token'],
    'events': ['struct Written'],
}
# Extra items a branch added: "kind name" -> module, from the environment (KEY=module,...).
for pair in filter(None, os.environ.get('SPLIT_EXTRA', '').split(',')):
    key, module = pair.split('=')
    PLACE.setdefault(module, []).append(key)
WHERE = {key: module for module, keys in PLACE.items() for key in keys}

HEADERS = {
    'inboxes': "//! Inboxes (channels): a web widget, an email address or an API source, with their settings.",
    'contacts::contact': "//! A contact as a conversation knows it, and the identity a verified widget visitor brings.",
    'contacts::visitors': "//! Widget visitor sessions: the browser a visitor writes from, and how long its token lives.",
    'conversations': "//! Conversations: finding, listing and counting them, their status, assignee and who has\n//! seen what. Every change writes its event in the same transaction and returns it.",
    'messages': "//! Messages and their files: the one insert every writer uses, an agent's reply or note,\n//! and reading a conversation's messages back.",
}


def key_of(line):
    s = line.strip()
    m = re.match(r'(?:pub(?:\([a-z]+\))? )?(struct|enum|const|macro_rules!|use|impl|type)\s*(\w+)', s)
    if not m:
        m2 = re.match(r'(?:pub(?:\([a-z]+\))? )?(?:async )?fn (\w+)', s)
        if m2:
            return 'fn ' + m2.group(1)
        return None
    kind, name = m.groups()
    return {'macro_rules!': 'macro'}.get(kind, kind) + ' ' + name


def items(lines, indent):
    """Splits lines at `indent` into (key, lines) chunks with their docs/attributes."""
    out, pending, i = [], [], 0
    pad = ' ' * indent
    while i < len(lines):
        line = lines[i]
        body = line[indent:] if line.startswith(pad) else None
        if line.strip() == '' or line.strip().startswith('// ----'):
            if pending and line.strip() == '':
                pending.append(line)
            i += 1
            continue
        if body is not None and (body.startswith('///') or body.startswith('#[') or body.startswith('//')):
            pending.append(line)
            i += 1
            continue
        key = key_of(line)
        if key is None:
            raise SystemExit(f'cannot name item at: {line!r}')
        start = i
        first = line.rstrip()
        braced = key.split(' ')[0] not in ('const', 'use', 'type') and not first.endswith(';')
        if braced:
            while lines[i].rstrip() not in (pad + '}', pad + '};', pad + '}}'):
                i += 1
        else:
            while not lines[i].rstrip().endswith(';'):
                i += 1
        chunk = [l for l in pending if l.strip() != ''] + lines[start:i + 1]
        out.append((key, chunk))
        pending = []
        i += 1
    return out


def main():
    path = os.path.join(STORE, 'chat.rs')
    text = open(path).read()
    # The doc of insert_message! sat above fetch_message's re-export.
    text = text.replace(
        "/// Inserts a message (with its attachments) and its `message.created` event, bumps the\n"
        "/// conversation; evaluates to `(Message, Event)`.\npub(crate) use fetch_message;\n",
        "pub(crate) use fetch_message;\n\n/// Inserts a message (with its attachments) and its `message.created` event, bumps the\n"
        "/// conversation; evaluates to `(Message, Event)`.\n")
    lines = text.split('\n')
    # The header: module docs and imports, up to the first item.
    head_end = 0
    for n, line in enumerate(lines):
        if line.startswith('//!') or line.startswith('use ') or line.strip() == '' or line.startswith('    ') or line.startswith('};'):
            head_end = n + 1
            continue
        break
    imports = '\n'.join(l for l in lines[:head_end] if not l.startswith('//!'))
    chunks = items(lines[head_end:], 0)
    placed = {m: [] for m in PLACE}
    methods = {m: [] for m in PLACE}
    for key, chunk in chunks:
        if key == 'impl Store':
            inner = chunk[chunk.index('impl Store {') + 1:-1]
            for mkey, mchunk in items(inner, 4):
                if mkey not in WHERE:
                    raise SystemExit(f'unplaced method {mkey}: add it with SPLIT_EXTRA')
                methods[WHERE[mkey]].append('\n'.join(mchunk))
            continue
        if key not in WHERE:
            raise SystemExit(f'unplaced item {key}: add it with SPLIT_EXTRA')
        placed[WHERE[key]].append('\n'.join(chunk))

    names = {}  # public name -> module
    for key, module in WHERE.items():
        kind, name = key.split(' ')
        if kind in ('struct', 'enum', 'const', 'macro', 'type'):
            names[name] = module

    # The imports the header had, one name each, to keep only what a file uses.
    use_lines = parse_uses(imports)

    files = {}
    for module in PLACE:
        if module == 'events':
            continue
        body = '\n\n'.join(placed[module])
        if methods[module]:
            body += '\n\nimpl Store {\n' + '\n\n'.join(methods[module]) + '\n}'
        files[module] = body
    for module, body in files.items():
        wanted = []
        code = re.sub(r'//[^\n]*', '', body)
        for prefix, name in use_lines:
            if re.search(r'(?<![\w:])' + re.escape(name) + r'\b', code):
                wanted.append((prefix, name))
        for name, home in names.items():
            if home != module and home != 'events' and re.search(r'(?<![\w:$])' + re.escape(name) + r'\b', strip_paths(code)):
                wanted.append(('crate::' + home.split('::')[0], name))
        if 'begin_write()' in body:
            wanted.append(('crate', 'BeginWrite'))
        if re.search(r'(?<![\w:])Written\b', body) and module != 'events':
            wanted.append(('crate::events', 'Written'))
        header = HEADERS[module] + '\n\n' + render_uses(wanted, module) + '\n\n'
        target = module_path(module)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, 'w').write(header + body.rstrip() + '\n')

    # Written joins the event log.
    ev = os.path.join(STORE, 'events.rs')
    s = open(ev).read()
    written = '\n\n'.join(placed['events'])
    at = s.find('\n#[cfg(test)]')
    s = (s.rstrip() + '\n\n' + written + '\n') if at < 0 else (s[:at].rstrip() + '\n\n' + written + '\n' + s[at:])
    open(ev, 'w').write(s)

    os.remove(path)
    # contacts.rs becomes contacts/mod.rs with the two new parts.
    old = os.path.join(STORE, 'contacts.rs')
    if os.path.exists(old):
        subprocess.run(['git', 'mv', old, os.path.join(STORE, 'contacts/mod.rs')], cwd=ROOT, check=True)
    cm = os.path.join(STORE, 'contacts/mod.rs')
    s = open(cm).read()
    first_use = s.index('\nuse ')
    s = s[:first_use] + '\n\nmod contact;\nmod visitors;\n\npub use contact::*;\npub use visitors::*;\n' + s[first_use:]
    open(cm, 'w').write(s)

    lib = os.path.join(STORE, 'lib.rs')
    s = open(lib).read()
    s = s.replace('pub mod chat;\n', '')
    mods = re.findall(r'^(?:pub )?mod \w+;\n', s, re.M)
    for new in ('pub mod conversations;\n', 'pub mod inboxes;\n', 'pub mod messages;\n'):
        mods.append(new)
    first = s.index(re.findall(r'^(?:pub )?mod \w+;\n', s, re.M)[0])
    s_wo = re.sub(r'^(?:pub )?mod \w+;\n', '', s, flags=re.M)
    s = s_wo[:first] + ''.join(sorted(set(mods), key=lambda m: m.split('mod ')[1])) + s_wo[first:]
    s = s.replace('pub use events::{Event, NewEvent};', 'pub use events::{Event, NewEvent, Written};')
    open(lib, 'w').write(s)

    rewrite_paths(names)


def module_path(module):
    return os.path.join(STORE, *module.split('::')) + '.rs'


def strip_paths(body):
    # Names already written with a path (crate::chat::X, kaltalk_core::x::Y) need no import.
    return re.sub(r'[\w$]+(?:::\w+)+', '', body)


def parse_uses(imports):
    out = []
    for m in re.finditer(r'use ([\w:]+?)::(\{[^;]*\}|\w+);', imports, re.S):
        prefix, rest = m.groups()
        for name in re.split(r'[,\s{}]+', rest):
            if name:
                out.append((prefix, name))
    return out


def render_uses(wanted, module):
    groups = {}
    for prefix, name in wanted:
        if prefix == 'crate::' + module.split('::')[0] and module.startswith('contacts') and prefix == 'crate::contacts':
            pass  # from the sibling part: through the parent's re-export
        groups.setdefault(prefix, [])
        if name not in groups[prefix]:
            groups[prefix].append(name)
    ext = sorted(p for p in groups if not p.startswith('crate'))
    own = sorted(p for p in groups if p.startswith('crate'))
    def line(p):
        ns = sorted(groups[p], key=lambda n: (n != 'self', n))
        return f'use {p}::{ns[0]};' if len(ns) == 1 else f'use {p}::{{{", ".join(ns)}}};'
    return '\n'.join(line(p) for p in ext) + ('\n\n' if ext and own else '') + '\n'.join(line(p) for p in own)


def merge_uses(s):
    """Top-level `use a::b::{x};` lines with the same path become one."""
    pattern = re.compile(r'^use ([\w:]+?)::(\{[^;]*\}|\w+);\n', re.M)
    while True:
        seen = {}
        for m in pattern.finditer(s):
            seen.setdefault(m.group(1), []).append(m)
        dup = next((ms for ms in seen.values() if len(ms) > 1), None)
        if dup is None:
            return s
        names = []
        for m in dup:
            names += [n for n in re.split(r'[,\s{}]+', m.group(2)) if n and n not in names]
        names.sort(key=lambda n: (n != 'self', n))
        merged = f'use {dup[0].group(1)}::{{{", ".join(names)}}};\n'
        for m in reversed(dup[1:]):
            s = s[:m.start()] + s[m.end():]
        s = s[:dup[0].start()] + merged + s[dup[0].end():]


def rewrite_paths(names):
    """crate::chat::X / $crate::chat::X / kaltalk_store::chat::X and `use … chat::{…}`."""
    def home(name, external):
        module = names.get(name)
        if module is None:
            raise SystemExit(f'chat::{name} is used but not placed')
        if module == 'events':
            return None if external else 'events'
        return module.split('::')[0]

    sources = subprocess.run(['git', 'ls-files', '*.rs'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sources += [os.path.relpath(os.path.join(dp, f), ROOT) for dp, _, fs in os.walk(STORE) for f in fs if f.endswith('.rs')]
    for rel in sorted(set(sources)):
        p = os.path.join(ROOT, rel)
        if not os.path.exists(p):
            continue
        s = open(p).read()
        if 'chat::' not in s:
            continue
        own = None
        if rel.startswith('crates/kaltalk-store/src/'):
            part = rel[len('crates/kaltalk-store/src/'):-3].replace('/mod', '').split('/')[0]
            own = part
        orig = s

        def use_repl(m):
            lead, root, rest = m.group(1), m.group(2), m.group(3)
            external = root == 'kaltalk_store'
            parts = [n for n in re.split(r'[,\s{}]+', rest) if n]
            by = {}
            for name in parts:
                if name == 'self':
                    raise SystemExit(f'{rel}: use chat::self')
                h = home(name, external)
                target = f'{root}' if h is None else f'{root}::{h}'
                if own and h == own and not external:
                    continue
                by.setdefault(target, []).append(name)
            out = []
            for target in sorted(by):
                ns = sorted(by[target])
                out.append(f'{lead}use {target}::{ns[0]};' if len(ns) == 1 else f'{lead}use {target}::{{{", ".join(ns)}}};')
            return '\n'.join(out) if out else ''
        roots = 'crate|kaltalk_store' if own else 'kaltalk_store'
        s = re.sub(r'^([ \t]*(?:pub(?:\(crate\))? )?)use (' + roots + r')::chat::(\{[^;]*\}|\w+);', use_repl, s, flags=re.M)

        def path_repl(m):
            root, name = m.group(1), m.group(2)
            h = home(name, root == 'kaltalk_store')
            return f'{root}::{name}' if h is None else f'{root}::{h}::{name}'
        s = re.sub(r'(' + (r'\$crate|crate|kaltalk_store' if own else 'kaltalk_store') + r')::chat::(\w+)', path_repl, s)
        s = re.sub(r'\n\n\n+', '\n\n', s)
        if s != orig:
            s = merge_uses(s)
            open(p, 'w').write(s)
        if re.search(r'(' + roots + r')::chat\b', s):
            raise SystemExit(f'{rel}: chat left')


if __name__ == '__main__':
    main()


ACCOUNT_PARTS = [
    ('users', 'users', "//! Users: signing up, names, sign-in addresses and passwords."),
    ('single-use email tokens', 'email_tokens', "//! Single-use email tokens: verifying an address and resetting a password."),
    ('organizations and members', 'organizations', "//! Organizations and their members: roles, removal and ownership."),
    ('invitations', 'invitations', "//! Invitations into an organization, and accepting one."),
    ('sessions', 'sessions', "//! Dashboard sign-in sessions."),
    ('API keys', 'api_keys', "//! API keys: created, listed, revoked and checked on every API request."),
]


def split_accounts():
    path = os.path.join(STORE, 'accounts.rs')
    s = open(path).read()
    s = s.replace("/// Marks every unused token of the user for `$purpose` used.\n", "", 1)
    s = s.replace("macro_rules! void_user_tokens {", "/// Marks every unused token of the user for `$purpose` used.\nmacro_rules! void_user_tokens {", 1)
    start = s.index('\nimpl Store {\n') + 1
    end = s.index('\n}\n', start) + 3
    before, impl, after = s[:start], s[start:end], s[end:]
    inner = impl.split('\n')[1:-2]
    sections, current = {}, None
    for line in inner:
        m = re.match(r'    // ---- (.+?) -+$', line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if current is None:
            if line.strip():
                raise SystemExit(f'accounts: a method before the first section: {line!r}')
            continue
        sections[current].append(line)
    known = {title for title, _, _ in ACCOUNT_PARTS}
    if set(sections) != known:
        raise SystemExit(f'accounts sections changed: {sorted(set(sections) ^ known)}')
    os.makedirs(os.path.join(STORE, 'accounts'), exist_ok=True)
    for title, name, doc in ACCOUNT_PARTS:
        body = '\n'.join(sections[title]).strip('\n')
        open(os.path.join(STORE, 'accounts', name + '.rs'), 'w').write(
            doc + '\n\nuse super::*;\n\nimpl Store {\n' + body + '\n}\n')
    mods = ''.join(f'mod {name};\n' for _, name, _ in ACCOUNT_PARTS)
    # In the parts' scope by order, the macros need no `use` any more.
    after = re.sub(r'^use \w+;\n', '', after, flags=re.M)
    head = before.rstrip() + '\n\n' + after.strip('\n') + '\n\n'
    head = head.replace("//! Users, organizations, memberships, sessions, single-use email tokens, invitations and\n//! API keys.\n",
                        "//! Accounts: users, organizations, memberships, sessions, single-use email tokens,\n"
                        "//! invitations and API keys. The types and the macros the parts share are here; each\n"
                        "//! part's writes are in its own file (the macros are in scope for them by order).\n", 1)
    subprocess.run(['git', 'rm', '-q', '--cached', path], cwd=ROOT, check=True)
    os.remove(path)
    open(os.path.join(STORE, 'accounts', 'mod.rs'), 'w').write(
        head + '// The parts come after the macros, so the macros are in their scope.\n' + mods)


if __name__ == '__main__' and os.environ.get('SPLIT_ACCOUNTS', '1') == '1':
    split_accounts()
