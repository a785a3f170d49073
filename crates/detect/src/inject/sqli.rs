//! SQL injection: a small SQL lexer plus rules over the token sequence.
//!
//! The approach follows libinjection's insight (written from scratch here): an
//! injected value only makes sense as SQL *from the place it is pasted into*. So the
//! value is lexed three times: as if it followed a number or bare word in the query
//! (`id=VALUE`), as if it were inside a single-quoted string (`name='VALUE'`) and
//! inside a double-quoted one. In the quoted contexts the lexer starts inside a string
//! literal, so `x' or '1'='1` lexes as *string, logic, string, operator, string*: the
//! value closed the string and continued with SQL. Plain text rarely does that:
//! "O'Brien and sons" lexes as *string, word, logic, word*.
//!
//! Rules then look for what an injection must do to be useful: break out and chain a
//! boolean condition, truncate the rest of the query with a comment, append a `UNION
//! SELECT` or a stacked statement, or call functions that only attacks need (time
//! delays, error-based extraction, system catalogs).

/// Most tokens looked at per context. Real injections show their hand within the first
/// few tokens; the cap bounds time and keeps the token buffer on the stack.
const MAX_TOKENS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A string literal; `closed` when its closing quote was seen.
    Str {
        closed: bool,
    },
    Num,
    /// An identifier or keyword that is not followed by `(`.
    Word(Kw),
    /// A word followed by `(`.
    Func(Kw),
    /// `@var` or `@@sysvar` (`sys` true).
    Var {
        sys: bool,
    },
    /// Comparison: `=`, `<>`, `LIKE`, `IN`, `IS`, ...
    Cmp,
    /// Arithmetic and bitwise operators.
    Arith,
    /// `AND`, `OR`, `XOR`, `&&`, `||`.
    Logic,
    /// `NOT`, `!`, `~`: unary operators that may precede an operand.
    Unary,
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    /// A comment with nothing but blanks or dashes in it (`--`, `#`, `-- -`); only
    /// kept when nothing but comments follows (query truncation).
    Comment,
    /// `::`, a PostgreSQL cast.
    Cast,
    /// A comment with text in it (`#2 MOM`, `--INFANT`): prose more often than a
    /// truncation, so rules treat it as the end of input, not as evidence.
    Remark,
    Other,
}

/// Keywords that the rules care about. Everything else is `Kw::None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    None,
    Union,
    Select,
    /// Statements that can start a stacked query.
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Delay,
    From,
    Into,
    Outfile,
    Table,
    Order,
    Group,
    By,
    Having,
    Limit,
    Procedure,
    Where,
    AllDistinct,
    Set,
    If,
    Case,
    /// `true`, `false`, `null`.
    Literal,
    /// Functions only attacks need: delays, error-based extraction, file access.
    Attack,
    /// Functions common in blind extraction (`ascii`, `substring`, `char`, ...).
    Probe,
    /// System catalogs and procedures: `information_schema`, `xp_cmdshell`, ...
    Catalog,
    When,
    Then,
    As,
    Immediate,
    Routine,
    Analyse,
    Truncate,
    /// PostgreSQL type names after a `::` cast.
    Type,
    /// `VALUES`, the row list of `INSERT`/`REPLACE`.
    Values,
    /// Common scalar functions (`sin`, `pow`, `compress`): SQL only when called.
    Scalar,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    offset: usize,
}

/// Longest keyword or function name the tables below know; longer words are
/// plain identifiers, which also keeps the lowercase copy on the stack.
const MAX_KEYWORD: usize = 32;

fn keyword(word: &str) -> (Kw, Option<Kind>) {
    if word.len() > MAX_KEYWORD {
        return (Kw::None, None);
    }
    let mut buf = [0u8; MAX_KEYWORD];
    let lower = match buf.get_mut(..word.len()) {
        Some(slot) => {
            slot.copy_from_slice(word.as_bytes());
            slot.make_ascii_lowercase();
            std::str::from_utf8(slot).unwrap_or("")
        }
        None => return (Kw::None, None),
    };
    let kw = match lower {
        "union" => Kw::Union,
        "select" => Kw::Select,
        "insert" => Kw::Insert,
        "update" => Kw::Update,
        "delete" => Kw::Delete,
        "drop" => Kw::Drop,
        "create" => Kw::Create,
        "alter" => Kw::Alter,
        "exec" | "execute" => Kw::Exec,
        "declare" => Kw::Declare,
        "shutdown" => Kw::Shutdown,
        "waitfor" => Kw::Waitfor,
        "delay" | "time" => Kw::Delay,
        "from" => Kw::From,
        "into" => Kw::Into,
        "outfile" | "dumpfile" => Kw::Outfile,
        "table" | "database" | "schema" => Kw::Table,
        "order" => Kw::Order,
        "group" => Kw::Group,
        "by" => Kw::By,
        "having" => Kw::Having,
        "limit" => Kw::Limit,
        "procedure" => Kw::Procedure,
        "where" => Kw::Where,
        "all" | "distinct" | "distinctrow" => Kw::AllDistinct,
        "set" => Kw::Set,
        "if" | "iif" => Kw::If,
        "case" => Kw::Case,
        "true" | "false" | "null" => Kw::Literal,
        "when" => Kw::When,
        "then" => Kw::Then,
        "as" => Kw::As,
        "immediate" => Kw::Immediate,
        "function" | "trigger" => Kw::Routine,
        "analyse" | "analyze" => Kw::Analyse,
        "truncate" => Kw::Truncate,
        "int" | "integer" | "bigint" | "smallint" | "text" | "varchar" | "bool" | "boolean"
        | "numeric" | "real" | "double" | "json" | "jsonb" | "oid" | "regclass" | "bytea" => {
            Kw::Type
        }
        // Functions that exist only in SQL dialects: calling one is SQL.
        "lo_get"
        | "db_name"
        | "current_user"
        | "session_user"
        | "system_user"
        | "schema_name"
        | "find_in_set"
        | "group_concat"
        | "concat_ws"
        | "sqlite_version"
        | "sqlite_compileoption_used"
        | "sqlite_compileoption_get"
        | "load_extension"
        | "unhex"
        | "connection_id"
        | "last_insert_id"
        | "found_rows"
        | "row_count"
        | "json_extract"
        | "jsonb_extract_path"
        | "pg_sleep_for"
        | "substring_index"
        | "export_set"
        | "master_pos_wait"
        | "is_srvrolemember"
        | "has_dbaccess"
        | "suser_sname"
        | "unistr"
        | "current_setting"
        | "pg_ls_dir"
        | "query_to_xml"
        | "database_to_xml"
        | "sys_context"
        | "dbms_xmlgen" => Kw::Attack,
        "sleep" | "benchmark" | "pg_sleep" | "extractvalue" | "updatexml" | "load_file"
        | "name_const" | "randomblob" | "gtid_subset" | "json_keys" | "exp"
        | "geometrycollection" | "multipoint" | "polygon" | "linestring" | "multilinestring"
        | "multipolygon" | "receive_message" | "make_set" | "elt" | "xmltype" | "ctxsys"
        | "dbms_pipe" | "utl_inaddr" | "utl_http" | "get_host_name" | "sys_eval" | "sys_exec"
        | "pg_read_file" | "lo_import" | "openrowset" | "opendatasource" | "dbms_lock" => {
            Kw::Attack
        }
        "ascii" | "ord" | "char" | "chr" | "nchar" | "substring" | "substr" | "mid" | "left"
        | "right" | "concat" | "string_agg" | "hex" | "version" | "user" | "database_name"
        | "cast" | "convert" | "count" | "length" | "len" | "md5" | "sha1" | "rand" | "floor"
        | "ifnull" | "isnull" | "coalesce" | "nullif" | "instr" | "locate" | "lower" | "upper"
        | "reverse" | "unicode" | "bin" | "conv" | "round" | "abs" | "strcmp" | "regexp_substr"
        | "rpad" | "lpad" | "repeat" | "replace" | "trim" | "rtrim" | "ltrim" | "char_length"
        | "bit_length" | "hostname" | "table_name" | "column_name" => Kw::Probe,
        // Scalar functions every major dialect has (math, string, hashing, dates).
        // Many are English words ("space", "power"), so unlike `Probe` they only
        // count when called: after a break-out, or opened at the end of a value.
        "sin" | "cos" | "tan" | "cot" | "asin" | "acos" | "atan" | "atan2" | "pow" | "power"
        | "sqrt" | "ln" | "log" | "log2" | "log10" | "ceil" | "ceiling" | "sign" | "pi"
        | "radians" | "compress" | "uncompress" | "encode" | "decode" | "sha2" | "crc32"
        | "aes_encrypt" | "aes_decrypt" | "to_base64" | "from_base64" | "sysdate" | "now"
        | "curdate" | "curtime" | "utc_timestamp" | "date_format" | "str_to_date"
        | "octet_length" | "soundex" | "quote" | "space" | "char_length_b" | "nvl" | "nvl2"
        | "to_char" | "to_number" | "rawtohex" | "hextoraw" | "unix_timestamp"
        | "uuid" | "weight_string" => Kw::Scalar,
        "values" => Kw::Values,
        "information_schema" | "sysobjects" | "syscolumns" | "sysdatabases" | "sysusers"
        | "sysprocesses" | "pg_catalog" | "pg_shadow" | "pg_user" | "pg_tables"
        | "sqlite_master" | "sqlite_schema" | "msysobjects" | "msysaccessobjects"
        | "all_tables" | "user_tables" | "all_tab_columns" | "user_tab_columns" | "xp_cmdshell"
        | "sp_executesql" | "sp_oacreate" | "sp_configure" | "sp_password" | "xp_regread"
        | "xp_dirtree" | "xp_fileexist" | "sp_makewebtask" | "innodb_table_stats"
        | "sys_config"
        // System databases of SQL Server (`master` and `model` are English words).
        | "tempdb" | "msdb" => Kw::Catalog,
        _ => Kw::None,
    };
    let kind = match lower {
        "and" | "or" | "xor" => Some(Kind::Logic),
        "not" => Some(Kind::Unary),
        "like" | "rlike" | "regexp" | "in" | "is" | "between" | "sounds" | "ilike" | "similar" => {
            Some(Kind::Cmp)
        }
        "div" | "mod" => Some(Kind::Arith),
        _ => None,
    };
    (kw, kind)
}

/// The string-literal context the value is assumed to be pasted into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    Quote(u8),
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    tokens: [Token; MAX_TOKENS],
    len: usize,
    tight_prefix: bool,
    empty_prefix: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            src: text.as_bytes(),
            text,
            pos: 0,
            tokens: [Token {
                kind: Kind::Other,
                offset: 0,
            }; MAX_TOKENS],
            len: 0,
            tight_prefix: false,
            empty_prefix: false,
        }
    }

    fn push(&mut self, kind: Kind, offset: usize) -> bool {
        // A comment followed by more tokens was only whitespace (`UNION/**/SELECT`):
        // drop it so rules see the real sequence.
        if self.len > 0
            && let Some(last) = self.tokens.get(self.len - 1)
            && matches!(last.kind, Kind::Comment | Kind::Remark)
            && !matches!(kind, Kind::Comment | Kind::Remark)
        {
            self.len -= 1;
        }
        if matches!(kind, Kind::Comment | Kind::Remark)
            && self.len > 0
            && self
                .tokens
                .get(self.len - 1)
                .is_some_and(|t| matches!(t.kind, Kind::Comment | Kind::Remark))
        {
            return true;
        }
        match self.tokens.get_mut(self.len) {
            Some(slot) => {
                *slot = Token { kind, offset };
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    /// Consume a string literal whose opening quote is at `self.pos - 1` (or that the
    /// context opened). Returns whether the closing quote was found.
    fn string(&mut self, quote: u8) -> bool {
        while self.pos < self.src.len() {
            let b = self.at(self.pos);
            if b == b'\\' {
                self.pos += 2;
                continue;
            }
            if b == quote {
                if self.at(self.pos + 1) == quote {
                    // Doubled quote: an escaped quote inside the literal.
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return true;
            }
            self.pos += 1;
        }
        self.pos = self.src.len();
        false
    }

    fn skip_to_eol(&mut self) {
        while self.pos < self.src.len() && !matches!(self.at(self.pos), b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn run(mut self, context: Context) -> Tokens {
        if let Context::Quote(q) = context {
            let closed = self.string(q);
            let prefix = self.src.get(..self.pos.saturating_sub(1)).unwrap_or(&[]);
            self.tight_prefix = !prefix.iter().any(u8::is_ascii_whitespace);
            self.empty_prefix = prefix.is_empty();
            if !closed {
                // The value never leaves the string: nothing to analyse.
                return Tokens::from_lexer(&self);
            }
            self.push(Kind::Str { closed: true }, 0);
        }
        while self.pos < self.src.len() {
            let start = self.pos;
            let b = self.at(start);
            let next = self.at(start + 1);
            let kind = match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0 | 0xa0 => {
                    self.pos += 1;
                    continue;
                }
                b'\'' | b'"' => {
                    self.pos += 1;
                    let closed = self.string(b);
                    Kind::Str { closed }
                }
                b'`' => {
                    // Backtick-quoted identifier (MySQL): classify its name, so
                    // `information_schema` in backticks is still a catalog.
                    self.pos += 1;
                    self.string(b'`');
                    let name = self
                        .text
                        .get(start + 1..self.pos.saturating_sub(1))
                        .unwrap_or("");
                    let (kw, _) = keyword(name);
                    Kind::Word(if kw == Kw::Catalog { kw } else { Kw::None })
                }
                b'-' if next == b'-' => {
                    self.skip_to_eol();
                    self.comment_kind(start + 2)
                }
                b'#' => {
                    self.skip_to_eol();
                    self.comment_kind(start + 1)
                }
                b'/' if next == b'*' => {
                    if self.at(start + 2) == b'!' {
                        // MySQL executable comment `/*!50000 UNION*/`: its body is SQL.
                        self.pos += 3;
                        while self.at(self.pos).is_ascii_digit() {
                            self.pos += 1;
                        }
                        continue;
                    }
                    match self.text.get(start + 2..).and_then(|rest| rest.find("*/")) {
                        Some(end) => self.pos = start + 2 + end + 2,
                        None => self.pos = self.src.len(),
                    }
                    Kind::Comment
                }
                b'*' if next == b'/' => {
                    // The end of a `/*!` comment whose start we stepped into.
                    self.pos += 2;
                    continue;
                }
                b'0'..=b'9' => {
                    self.number();
                    Kind::Num
                }
                b'.' if next.is_ascii_digit() => {
                    self.number();
                    Kind::Num
                }
                b'@' => {
                    let sys = next == b'@';
                    self.pos += if sys { 2 } else { 1 };
                    while is_word_byte(self.at(self.pos)) || self.at(self.pos) == b'.' {
                        self.pos += 1;
                    }
                    Kind::Var { sys }
                }
                b'=' => {
                    self.pos += 1;
                    Kind::Cmp
                }
                b'<' | b'>' | b'!' => {
                    self.pos += 1;
                    while matches!(self.at(self.pos), b'=' | b'>' | b'<') {
                        self.pos += 1;
                    }
                    if b == b'!' && self.pos == start + 1 {
                        Kind::Unary
                    } else {
                        Kind::Cmp
                    }
                }
                b':' if next == b'=' => {
                    self.pos += 2;
                    Kind::Cmp
                }
                b':' if next == b':' => {
                    self.pos += 2;
                    Kind::Cast
                }
                b'&' if next == b'&' => {
                    self.pos += 2;
                    Kind::Logic
                }
                b'|' if next == b'|' => {
                    self.pos += 2;
                    Kind::Logic
                }
                b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' => {
                    self.pos += 1;
                    Kind::Arith
                }
                b'~' => {
                    self.pos += 1;
                    Kind::Unary
                }
                b'(' => {
                    self.pos += 1;
                    Kind::LParen
                }
                b')' => {
                    self.pos += 1;
                    Kind::RParen
                }
                b',' => {
                    self.pos += 1;
                    Kind::Comma
                }
                b';' => {
                    self.pos += 1;
                    Kind::Semi
                }
                b'.' => {
                    self.pos += 1;
                    Kind::Dot
                }
                b'[' => {
                    // T-SQL bracketed identifier.
                    while self.pos < self.src.len() && self.at(self.pos) != b']' {
                        self.pos += 1;
                    }
                    self.pos += 1;
                    Kind::Word(Kw::None)
                }
                _ if is_word_byte(b) => self.word(),
                _ => {
                    self.pos += 1;
                    Kind::Other
                }
            };
            if !self.push(kind, start) {
                break;
            }
        }
        Tokens::from_lexer(&self)
    }

    /// `Comment` when the text from `from` to the current position is blank or only
    /// dashes and plus signs (`-- -`, `--+`), else `Remark`.
    fn comment_kind(&self, from: usize) -> Kind {
        let body = self.src.get(from..self.pos).unwrap_or(&[]);
        if body
            .iter()
            .all(|b| b.is_ascii_whitespace() || matches!(b, b'-' | b'+' | b'#' | 0))
        {
            Kind::Comment
        } else {
            Kind::Remark
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        if self.at(start) == b'0' && matches!(self.at(start + 1), b'x' | b'X' | b'b' | b'B') {
            self.pos += 2;
            while self.at(self.pos).is_ascii_hexdigit() {
                self.pos += 1;
            }
            return;
        }
        while self.at(self.pos).is_ascii_digit() || self.at(self.pos) == b'.' {
            self.pos += 1;
        }
        if matches!(self.at(self.pos), b'e' | b'E')
            && (self.at(self.pos + 1).is_ascii_digit()
                || (matches!(self.at(self.pos + 1), b'+' | b'-')
                    && self.at(self.pos + 2).is_ascii_digit()))
        {
            self.pos += 2;
            while self.at(self.pos).is_ascii_digit() {
                self.pos += 1;
            }
        }
    }

    fn word(&mut self) -> Kind {
        let start = self.pos;
        while is_word_byte(self.at(self.pos)) {
            self.pos += 1;
        }
        let word = self.text.get(start..self.pos).unwrap_or("");
        let (kw, kind) = keyword(word);
        let called = self.followed_by_paren();
        // `div(23,-2)`, `mod(7,2)`: PostgreSQL/MySQL integer division and modulo as
        // functions; as bare words they are operators.
        if called && kind == Some(Kind::Arith) {
            return Kind::Func(Kw::Scalar);
        }
        if let Some(kind) = kind {
            return kind;
        }
        if called {
            Kind::Func(kw)
        } else {
            Kind::Word(kw)
        }
    }

    /// Whether `(` follows the current position, after blanks or comments.
    fn followed_by_paren(&self) -> bool {
        let mut look = self.pos;
        loop {
            match self.at(look) {
                b' ' | b'\t' | b'\n' | b'\r' => look += 1,
                b'/' if self.at(look + 1) == b'*' => {
                    match self.text.get(look + 2..).and_then(|r| r.find("*/")) {
                        Some(end) => look = look + 2 + end + 2,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        self.at(look) == b'('
    }
}

struct Tokens {
    items: [Token; MAX_TOKENS],
    len: usize,
    /// In a quoted context: the text before the closing quote has no blank. A login
    /// or id field broken out of (`admin'--`, `a@b.c';`) looks like that; a product
    /// title with an inch mark (`SOAP 1 '#`) does not.
    tight_prefix: bool,
    /// In a quoted context: the value starts with the closing quote.
    empty_prefix: bool,
}

impl Tokens {
    fn from_lexer(lexer: &Lexer<'_>) -> Self {
        Self {
            items: lexer.tokens,
            len: lexer.len,
            tight_prefix: lexer.tight_prefix,
            empty_prefix: lexer.empty_prefix,
        }
    }

    fn kind(&self, i: usize) -> Option<Kind> {
        if i < self.len {
            self.items.get(i).map(|t| t.kind)
        } else {
            None
        }
    }

    fn offset(&self, i: usize) -> usize {
        self.items.get(i).map_or(0, |t| t.offset)
    }

    fn word(&self, i: usize) -> Option<Kw> {
        match self.kind(i)? {
            Kind::Word(kw) | Kind::Func(kw) => Some(kw),
            _ => None,
        }
    }

    fn is_word(&self, i: usize, kw: Kw) -> bool {
        self.word(i) == Some(kw)
    }
}

/// An operand: something a comparison or logic operator can take.
fn is_operand(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Str { .. } | Kind::Num | Kind::Var { .. } | Kind::Func(_) | Kind::LParen
    ) || matches!(kind, Kind::Word(kw) if matches!(kw, Kw::None | Kw::Literal | Kw::Probe | Kw::Scalar))
}

/// What the scanner found: reason and byte offset in the scanned text.
pub type Hit = (&'static str, usize);

/// Scan one (already decoded) value for SQL injection.
pub fn scan(text: &str) -> Option<Hit> {
    if let Some(hit) = scan_text(text) {
        return Some(hit);
    }
    // `md5\(`, `\'lol' or '1`: backslashes before punctuation that the application
    // strips (PHP `stripslashes`, a JSON or shell unescape) before the value meets
    // SQL. Look again without them; only values that have such a backslash pay.
    let bytes = text.as_bytes();
    let escapes = bytes
        .windows(2)
        .any(|w| w.first() == Some(&b'\\') && w.get(1).is_some_and(u8::is_ascii_punctuation));
    if !escapes {
        return None;
    }
    let mut unescaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            continue;
        }
        unescaped.push(c);
    }
    scan_text(&unescaped)
}

fn scan_text(text: &str) -> Option<Hit> {
    // A single word or number (`music`, `price_asc`, `42`) cannot carry SQL: skip the
    // lexer for the most common parameter values.
    if !text
        .bytes()
        .any(|b| b.is_ascii_whitespace() || (b.is_ascii_punctuation() && b != b'_') || b >= 0x80)
    {
        // Except a system catalog named on its own (`information_schema`, `msysobjects`).
        return (keyword(text).0 == Kw::Catalog).then_some(("system catalog", 0));
    }
    if let Some(hit) = raw_markers(text.as_bytes()) {
        return Some(hit);
    }
    let bare = Lexer::new(text).run(Context::Bare);
    if let Some(hit) = anywhere(&bare, text)
        .or_else(|| anchored(&bare, false))
        .or_else(|| fragment(&bare))
    {
        return Some(hit);
    }
    // Backticks quote MySQL identifiers: `` ` AS `x` FROM`` breaks out of one.
    for quote in [b'\'', b'"', b'`'] {
        if !text.as_bytes().contains(&quote) {
            continue;
        }
        let tokens = Lexer::new(text).run(Context::Quote(quote));
        if let Some(hit) = anywhere(&tokens, text).or_else(|| anchored(&tokens, true)) {
            return Some(hit);
        }
    }
    None
}

/// Whole-value shapes that only SQL produces, though no query follows them:
/// - a call of a SQL function opened at the very end of the value (`COALESCE(`,
///   `md5 (`, `x user(`): a probe for which functions a filter lets through; prose
///   that names a function continues after the parenthesis ("lower (see below)");
/// - `'x'!='y`: a literal compared with a string the value leaves open for the
///   query's own closing quote, the tautology of a quoted break-out;
/// - `div(23,-2)`, `abs(-5)`: the whole value is one SQL function call on
///   numbers, computing the number a numeric parameter expects when operators
///   are filtered.
fn fragment(t: &Tokens) -> Option<Hit> {
    if matches!(t.kind(0), Some(Kind::Func(Kw::Scalar | Kw::Probe)))
        && t.kind(1) == Some(Kind::LParen)
        && t.kind(t.len.saturating_sub(1)) == Some(Kind::RParen)
        && t.len > 3
        && (2..t.len - 1).all(|i| matches!(t.kind(i), Some(Kind::Num | Kind::Comma | Kind::Arith)))
        && (2..t.len - 1).any(|i| t.kind(i) == Some(Kind::Comma) || t.kind(i) == Some(Kind::Arith))
    {
        return Some(("numeric function probe", t.offset(0)));
    }
    let last = t.len.checked_sub(1)?;
    if t.kind(last) == Some(Kind::LParen)
        && last > 0
        && matches!(
            t.kind(last - 1),
            Some(Kind::Func(
                Kw::Probe | Kw::Scalar | Kw::Attack | Kw::Catalog | Kw::Insert | Kw::Table | Kw::If
            ))
        )
    {
        return Some(("open function call", t.offset(last - 1)));
    }
    if t.len == 3
        && t.kind(0) == Some(Kind::Str { closed: true })
        && t.kind(1) == Some(Kind::Cmp)
        && t.kind(2) == Some(Kind::Str { closed: false })
    {
        return Some(("comparison break-out", t.offset(1)));
    }
    None
}

/// Byte-level markers that no tokenizer context explains away: MySQL executable
/// comments and optimizer hints (`/*!50000UNION*/`, `/*+ hint */`), the MySQL
/// scientific-notation bypass (`1.e(`, `1.e.tables`), and NoSQL (MongoDB) query
/// operators in parameter names or JSON keys (`u[$ne]=1`, `{"$where": ...}`).
fn raw_markers(bytes: &[u8]) -> Option<Hit> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    for i in 0..bytes.len() {
        match at(i) {
            b'/' if at(i + 1) == b'*' && matches!(at(i + 2), b'!' | b'+') => {
                return Some(("mysql executable comment", i));
            }
            // An optimizer hint with blanks before the `+` (`/* +INDEX(...) */`):
            // MySQL and Oracle still read it as a hint.
            b'/' if at(i + 1) == b'*' && matches!(at(i + 2), b' ' | b'\t' | b'\n') => {
                let mut j = i + 2;
                while matches!(at(j), b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                if at(j) == b'+' && at(j + 1).is_ascii_alphabetic() {
                    return Some(("optimizer hint", i));
                }
            }
            b'.' if i > 0
                && at(i - 1).is_ascii_digit()
                && matches!(at(i + 1), b'e' | b'E')
                && matches!(at(i + 2), b'(' | b')' | b',' | b'.')
                && !at(i + 3).is_ascii_digit() =>
            {
                return Some(("scientific notation", i));
            }
            b'$' if i > 0 && matches!(at(i - 1), b'[' | b'"' | b'\'' | b'{') => {
                let start = i + 1;
                let mut end = start;
                while at(end).is_ascii_alphabetic() {
                    end += 1;
                }
                let name = bytes.get(start..end).unwrap_or(&[]);
                let closes = matches!(at(end), b']' | b'"' | b'\'' | b':');
                if closes && is_nosql_operator(name) {
                    return Some(("nosql operator", i));
                }
            }
            _ => {}
        }
    }
    None
}

fn is_nosql_operator(name: &[u8]) -> bool {
    const OPERATORS: &[&str] = &[
        "ne",
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "regex",
        "where",
        "exists",
        "not",
        "nor",
        "or",
        "and",
        "expr",
        "elemmatch",
        "text",
        "all",
        "size",
        "type",
        "mod",
        "jsonschema",
        "function",
        "accumulator",
    ];
    OPERATORS
        .iter()
        .any(|op| op.as_bytes().eq_ignore_ascii_case(name))
}

/// Rules that hold wherever the tokens appear.
fn anywhere(t: &Tokens, text: &str) -> Option<Hit> {
    for i in 0..t.len {
        let Some(kind) = t.kind(i) else { break };
        let at = t.offset(i);
        match kind {
            Kind::Word(Kw::Union) | Kind::Func(Kw::Union) => {
                let mut j = i + 1;
                while t.is_word(j, Kw::AllDistinct) || t.kind(j) == Some(Kind::LParen) {
                    j += 1;
                }
                // `1 UNION SELECT 1,2`; a bare "union select" needs a value before it
                // (`-1 UNION ALL SELECT`), so a search for the phrase passes.
                let anchored_before = i > 0
                    && matches!(
                        t.kind(i - 1),
                        Some(
                            Kind::Num
                                | Kind::Str { .. }
                                | Kind::RParen
                                | Kind::Comment
                                | Kind::Remark
                        )
                    );
                if t.is_word(j, Kw::Select) && (select_expr_lenient(t, j + 1) || anchored_before) {
                    return Some(("union select", at));
                }
                // `UnIoN sElEcT`: keywords in scrambled case dodge case-sensitive
                // filters; nobody types the phrase that way.
                if j == i + 1
                    && t.is_word(j, Kw::Select)
                    && (scrambled_case(text, at, 5) || scrambled_case(text, t.offset(j), 6))
                {
                    return Some(("union select", at));
                }
            }
            Kind::Func(Kw::Attack) => return Some(("attack function", at)),
            // `database()`, `schema()`: the current database, a reconnaissance call.
            Kind::Func(Kw::Table) => return Some(("attack function", at)),
            Kind::Word(Kw::Catalog) | Kind::Func(Kw::Catalog) => {
                return Some(("system catalog", at));
            }
            // Any `@@name` is a server variable: ordinary text has no use for it, and
            // `@@version` / `@@datadir` are the classic fingerprinting probes.
            Kind::Var { sys: true } => return Some(("system variable", at)),
            Kind::Word(Kw::Waitfor) if t.is_word(i + 1, Kw::Delay) => {
                return Some(("waitfor delay", at));
            }
            Kind::Semi if stacked(t, i + 1) => return Some(("stacked query", at)),
            Kind::LParen if t.is_word(i + 1, Kw::Select) && select_expr_lenient(t, i + 2) => {
                return Some(("subquery", at));
            }
            Kind::Word(Kw::Select) | Kind::Func(Kw::Select) if select_from(t, i + 1) => {
                return Some(("select from", at));
            }
            // `select pg_sleep`, `select benchmark`: selecting an attack-only function.
            Kind::Word(Kw::Select) | Kind::Func(Kw::Select)
                if matches!(t.kind(i + 1), Some(Kind::Word(Kw::Attack))) =>
            {
                return Some(("attack function", at));
            }
            // `GROUP BY x HAVING ...`: a clause chain, not prose.
            Kind::Word(Kw::Having)
                if i >= 3 && t.is_word(i - 3, Kw::Group) && t.is_word(i - 2, Kw::By) =>
            {
                return Some(("having", at));
            }
            // `INSERT INTO t (a) VALUES (`, `REPLACE t VALUES (`: a row insert.
            Kind::Word(Kw::Values) | Kind::Func(Kw::Values)
                if matches!(t.kind(i + 1), Some(Kind::LParen))
                    && (i.saturating_sub(8)..i).any(|j| {
                        t.is_word(j, Kw::Insert)
                            || (t.is_word(j, Kw::Probe)
                                && text
                                    .get(t.offset(j)..)
                                    .and_then(|r| r.get(..7))
                                    .is_some_and(|w| w.eq_ignore_ascii_case("replace")))
                    }) =>
            {
                return Some(("insert values", at));
            }
            Kind::Word(Kw::Into) if t.is_word(i + 1, Kw::Outfile) => {
                return Some(("into outfile", at));
            }
            Kind::Cast if t.is_word(i + 1, Kw::Type) => return Some(("postgres cast", at)),
            // `mysql.user`, `mysql.db`: MySQL's grant tables.
            Kind::Word(Kw::None)
                if t.kind(i + 1) == Some(Kind::Dot)
                    && word_at(text, at, "mysql")
                    && (word_at(text, t.offset(i + 2), "user")
                        || word_at(text, t.offset(i + 2), "db")) =>
            {
                return Some(("system catalog", at));
            }
            // `'{"a":1}' -> '$.a'`, `'[1,2]' ? '1'`, `'{"b":2}'::jsonb <@ ...`: JSON
            // literals fed to SQL JSON operators.
            // The closing `}` of a JSON document around a stringified one
            // (`{"p":"{\"a\":1}"}`, GraphQL's `{"query":"{ x }"}`) is no
            // operator.
            Kind::Str { closed: true }
                if matches!(text.as_bytes().get(at + 1), Some(b'{' | b'['))
                    && matches!(
                        t.kind(i + 1),
                        Some(Kind::Cmp | Kind::Arith | Kind::Other | Kind::Cast | Kind::Logic)
                    )
                    && !matches!(
                        text.as_bytes().get(t.offset(i + 1)),
                        Some(b'}' | b']' | b',' | b':')
                    ) =>
            {
                return Some(("json operator", at));
            }
            Kind::Word(Kw::Declare) if matches!(t.kind(i + 1), Some(Kind::Var { .. })) => {
                return Some(("declare variable", at));
            }
            Kind::Word(Kw::Exec) | Kind::Func(Kw::Exec)
                if matches!(t.kind(i + 1), Some(Kind::Var { .. }))
                    || (matches!(t.kind(i + 1), Some(Kind::Word(_)))
                        && t.kind(i + 2) == Some(Kind::Dot))
                    || (t.kind(i + 1) == Some(Kind::LParen)
                        && matches!(t.kind(i + 2), Some(Kind::Var { .. })))
                    || t.is_word(i + 1, Kw::Immediate) =>
            {
                return Some(("dynamic sql", at));
            }
            Kind::Word(Kw::Procedure) if t.is_word(i + 1, Kw::Analyse) => {
                return Some(("procedure analyse", at));
            }
            Kind::Word(Kw::Create)
                if t.is_word(i + 1, Kw::Routine)
                    || (t.is_word(i + 1, Kw::Table)
                        && matches!(t.kind(i + 2), Some(Kind::Word(_) | Kind::Func(_)))) =>
            {
                return Some(("ddl statement", at));
            }
            Kind::Word(Kw::Alter)
                if t.is_word(i + 1, Kw::Table)
                    && matches!(t.kind(i + 2), Some(Kind::Word(_)))
                    && matches!(t.kind(i + 3), Some(Kind::Word(_) | Kind::Func(_))) =>
            {
                return Some(("ddl statement", at));
            }
            Kind::Word(Kw::Case) | Kind::Func(Kw::Case) => {
                let when = (i + 1..i + 4).any(|j| t.is_word(j, Kw::When));
                let then = (i + 2..(i + 12).min(t.len)).any(|j| t.is_word(j, Kw::Then));
                if when && then {
                    return Some(("case when", at));
                }
            }
            Kind::Func(Kw::If)
                if t.kind(i + 1) == Some(Kind::LParen)
                    && t.kind(i + 2).is_some_and(is_operand)
                    && t.kind(i + 3) == Some(Kind::Cmp) =>
            {
                return Some(("conditional", at));
            }
            // `x AS y FROM`: right after the break-out, or after a literal or `)`;
            // after prose words ("use `a` as `b` from now on") it is English.
            Kind::Word(Kw::As)
                if (i == 1
                    || (i > 1
                        && matches!(
                            t.kind(i - 1),
                            Some(Kind::Str { closed: true } | Kind::RParen | Kind::Num)
                        )))
                    && matches!(t.kind(i + 1), Some(Kind::Word(_) | Kind::Str { .. }))
                    && t.is_word(i + 2, Kw::From) =>
            {
                return Some(("alias from", at));
            }
            _ => {}
        }
    }
    None
}

/// Whether the word at `at` in `text` is `word` (ASCII case-insensitive, whole word).
fn word_at(text: &str, at: usize, word: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .get(at..at + word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        && !bytes
            .get(at + word.len())
            .copied()
            .is_some_and(is_word_byte)
}

/// Whether the keyword of `len` bytes at `at` mixes case the way evasion does
/// (`UnIoN`, `seLect`), not as typing does (`union`, `UNION`, `Union`).
fn scrambled_case(text: &str, at: usize, len: usize) -> bool {
    let Some(word) = text.as_bytes().get(at..at + len) else {
        return false;
    };
    let tail = word.get(1..).unwrap_or(&[]);
    let lower_tail = tail.iter().all(u8::is_ascii_lowercase);
    let upper_tail = tail.iter().all(u8::is_ascii_uppercase);
    let first_upper = word.first().is_some_and(u8::is_ascii_uppercase);
    !(lower_tail || (upper_tail && first_upper))
}

/// `; DROP TABLE`, `; SELECT 1`, `; EXEC xp_...`, `; SHUTDOWN`...
fn stacked(t: &Tokens, i: usize) -> bool {
    let Some(kw) = t.word(i) else {
        return false;
    };
    let next = t.kind(i + 1);
    match kw {
        // After a tight quote break (`';select p`) any continuation counts.
        Kw::Select => select_expr(t, i + 1) || (t.tight_prefix && next.is_some()),
        Kw::Drop | Kw::Create | Kw::Alter => t.is_word(i + 1, Kw::Table),
        Kw::Delete => t.is_word(i + 1, Kw::From),
        Kw::Insert => t.is_word(i + 1, Kw::Into),
        Kw::Update => matches!(next, Some(Kind::Word(_))) && t.is_word(i + 2, Kw::Set),
        // `exec xp_cmdshell`, `exec master..xp_dirtree`, `exec(@q)`, `exec @q`.
        Kw::Exec => {
            matches!(
                next,
                Some(Kind::Word(Kw::Catalog) | Kind::Func(_) | Kind::Var { .. } | Kind::LParen)
            ) || (matches!(next, Some(Kind::Word(_))) && t.kind(i + 2) == Some(Kind::Dot))
        }
        Kw::Declare | Kw::Set => matches!(next, Some(Kind::Var { .. })),
        Kw::Shutdown => matches!(next, None | Some(Kind::Comment | Kind::Semi)),
        Kw::Waitfor => t.is_word(i + 1, Kw::Delay),
        Kw::Truncate => next.is_some(),
        Kw::If => matches!(next, Some(Kind::LParen)) || matches!(t.kind(i), Some(Kind::Func(_))),
        _ => false,
    }
}

/// What follows `SELECT` in an injected query: `1,2`, `@@version`, `*`, `user()`,
/// `'a'`, `null`, `CASE`, `(`...
fn select_expr(t: &Tokens, i: usize) -> bool {
    let mut i = i;
    while t.is_word(i, Kw::AllDistinct) {
        i += 1;
    }
    match t.kind(i) {
        Some(Kind::Num | Kind::Var { .. } | Kind::Func(_) | Kind::Str { .. } | Kind::LParen) => {
            true
        }
        Some(Kind::Arith) => true,
        Some(Kind::Word(Kw::Literal | Kw::Case | Kw::Catalog | Kw::Probe)) => true,
        Some(Kind::Word(Kw::None)) => {
            // `select name, email from users`: a column list. "select a plan from
            // the list" has two words in a row, which a column list does not; a single
            // column (`select x from y`) is left to the break-out rules.
            matches!(t.kind(i + 1), Some(Kind::Comma | Kind::Dot))
        }
        _ => false,
    }
}

/// `select_expr`, also accepting a single column followed by FROM (`(select id
/// from users`): right after `(` or UNION a select is SQL whatever follows.
fn select_expr_lenient(t: &Tokens, i: usize) -> bool {
    select_expr(t, i)
        || (matches!(t.kind(i), Some(Kind::Word(Kw::None))) && t.is_word(i + 1, Kw::From))
}

fn select_from(t: &Tokens, i: usize) -> bool {
    if !select_expr(t, i) {
        return false;
    }
    // A bare `select 1` in prose is rare but possible ("select 1 item"); require the
    // expression list to continue the way SQL does.
    let mut j = i;
    let mut steps = 0;
    while let Some(kind) = t.kind(j) {
        if steps > 24 {
            break;
        }
        match kind {
            Kind::Word(Kw::From | Kw::Into | Kw::Union | Kw::Where | Kw::Limit | Kw::Order) => {
                return true;
            }
            Kind::Comma | Kind::Var { .. } | Kind::Func(_) | Kind::Comment => return true,
            Kind::Semi | Kind::Logic => return steps > 0,
            _ => {}
        }
        j += 1;
        steps += 1;
    }
    // `select 1` alone at the end of an injected value (`1 union select 1`) is handled
    // by the union rule; as a whole value it is too weak.
    false
}

/// Rules that need the value to start the way an injection into a query does: a
/// string break-out (quoted contexts) or a number/word followed by SQL.
fn anchored(t: &Tokens, quoted: bool) -> Option<Hit> {
    let mut i = 0;
    let first = t.kind(0)?;
    let anchor_at = t.offset(0);
    let mut strong_anchor = quoted;
    match first {
        Kind::Str { closed: true } if quoted => i = 1,
        Kind::Num
        | Kind::Word(Kw::None | Kw::Literal)
        | Kind::Str { closed: true }
        | Kind::Var { sys: false } => i = 1,
        Kind::Arith if matches!(t.kind(1), Some(Kind::Num)) => i = 2,
        Kind::RParen => {}
        // A value that starts with `OR 1=1`, `AND ...`: the anchor is whatever the
        // application put before it.
        Kind::Logic => {}
        _ => return None,
    }
    // Extra words between the anchor and the SQL: `1 ) )`, and MySQL's implicit
    // `1 foo or 1=1` is too weak to follow.
    while t.kind(i) == Some(Kind::RParen) {
        strong_anchor = true;
        i += 1;
    }
    let at = t.offset(i);
    match t.kind(i) {
        Some(Kind::Logic) if boolean(t, i + 1, strong_anchor) => {
            return Some(("boolean condition", at));
        }
        Some(Kind::Comment) if strong_anchor && i > 0 && (t.tight_prefix || !quoted) => {
            return Some(("comment truncation", at));
        }
        Some(Kind::Semi) if strong_anchor && i > 0 => {
            let ends = matches!(t.kind(i + 1), None | Some(Kind::Comment));
            if (ends && (t.tight_prefix || !quoted)) || stacked(t, i + 1) {
                return Some(("stacked query", at));
            }
        }
        Some(Kind::Word(Kw::Union))
            if i > 0
                && matches!(
                    t.kind(i + 1),
                    Some(Kind::Word(Kw::AllDistinct) | Kind::LParen)
                ) =>
        {
            return Some(("union", at));
        }
        Some(Kind::Word(Kw::Order | Kw::Group))
            if t.is_word(i + 1, Kw::By) && matches!(t.kind(i + 2), Some(Kind::Num)) && i > 0 =>
        {
            return Some(("order by probe", at));
        }
        Some(Kind::Word(Kw::Having)) if i > 0 && boolean(t, i + 1, false) => {
            return Some(("having", at));
        }
        // `) like (`, `)=(`: a break-out from a parenthesised expression that goes
        // on comparing.
        Some(Kind::Cmp)
            if first == Kind::RParen && matches!(t.kind(i + 1), Some(k) if is_operand(k)) =>
        {
            return Some(("comparison break-out", at));
        }
        // `'select H`: a value that opens with the closing quote and a SELECT.
        Some(Kind::Word(Kw::Select))
            if quoted
                && i == 1
                && t.empty_prefix
                && matches!(
                    t.kind(i + 1),
                    Some(Kind::Word(_) | Kind::Num | Kind::Func(_) | Kind::Var { .. })
                )
                && matches!(
                    t.kind(i + 2),
                    None | Some(Kind::Word(Kw::From) | Kind::Comma | Kind::Comment)
                ) =>
        {
            return Some(("select after break-out", at));
        }
        // `x'='x` style: the break-out compares and then keeps going.
        Some(Kind::Cmp)
            if quoted
                && i > 0
                && t.kind(i + 1).is_some_and(is_operand)
                && matches!(
                    t.kind(i + 2),
                    Some(Kind::Logic | Kind::Comment | Kind::Semi)
                ) =>
        {
            return Some(("comparison break-out", at));
        }
        // `'+(select ...)+'`, `'||user()||'`, `1*if(...)`.
        Some(Kind::Arith)
            if strong_anchor
                && i > 0
                && (matches!(
                    t.kind(i + 1),
                    Some(Kind::Func(Kw::Probe | Kw::Scalar | Kw::If | Kw::Select))
                ) || (t.kind(i + 1) == Some(Kind::LParen) && t.is_word(i + 2, Kw::Select))) =>
        {
            return Some(("expression break-out", at));
        }
        _ => {}
    }
    let _ = anchor_at;
    None
}

/// After a logic operator: does a boolean condition follow?
///
/// `strong` when the anchor proves a break-out (closed string or closing parenthesis):
/// then `' OR 1--` and `' OR 'a` are enough. Otherwise (`1 AND 1=1`) a comparison or
/// a function call must follow, so "1 or 2" and "salt and pepper" pass.
fn boolean(t: &Tokens, i: usize, strong: bool) -> bool {
    let mut i = i;
    while matches!(t.kind(i), Some(Kind::LParen | Kind::Unary))
        || (t.kind(i) == Some(Kind::Arith) && matches!(t.kind(i + 1), Some(Kind::Num)))
    {
        i += 1;
    }
    let Some(operand) = t.kind(i) else {
        return false;
    };
    if !is_operand(operand)
        && !matches!(
            operand,
            Kind::Word(Kw::Select | Kw::If | Kw::Case | Kw::Attack)
        )
    {
        return false;
    }
    if matches!(
        operand,
        Kind::Func(Kw::Probe | Kw::Scalar | Kw::Attack | Kw::If | Kw::Select | Kw::Catalog)
    ) {
        return true;
    }
    if matches!(operand, Kind::Word(Kw::Select)) && select_expr(t, i + 1) {
        return true;
    }
    // Skip the rest of the operand: `a.b`, `1+1`.
    let mut j = i + 1;
    while matches!(t.kind(j), Some(Kind::Dot | Kind::Arith))
        && t.kind(j + 1).is_some_and(is_operand)
    {
        j += 2;
    }
    match t.kind(j) {
        Some(Kind::Cmp) => {
            // `1=1`, `'a'='a`, `x like 'a%'`, `1 in (1)`, `x is null`.
            t.kind(j + 1).is_some_and(|k| {
                is_operand(k) || matches!(k, Kind::Unary | Kind::Arith | Kind::Cmp)
            }) || (strong && t.kind(j + 1).is_none())
        }
        // `' OR 1--`, `' or true#`, `') or 1=1`: after a proven break-out, a
        // constant operand that ends the value is a tautology; a word or an opened
        // string ("shabby "and white", `" and "disney`) is prose.
        None | Some(Kind::Comment | Kind::Remark | Kind::Logic | Kind::Semi | Kind::RParen) => {
            strong
                && (matches!(
                    operand,
                    Kind::Num
                        | Kind::Var { .. }
                        | Kind::Str { closed: true }
                        | Kind::Word(Kw::Literal)
                ) || (t.tight_prefix && matches!(operand, Kind::Str { closed: false })))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> bool {
        scan(s).is_some()
    }

    #[test]
    fn detects_classic_injections() {
        for attack in [
            "1 OR 1=1",
            "-1839' or '1'='1",
            "-1839\" or \"1\"=\"2",
            "admin'--",
            "admin' #",
            "1) or (1=1",
            "1 union select 1,2,3",
            "1 UNION/**/ALL/**/SELECT user(),2",
            "1 /*!50000union*/ /*!50000select*/ 1",
            "x'; DROP TABLE users--",
            "1; exec xp_cmdshell 'dir'",
            "1 AND SLEEP(5)",
            "1' AND (SELECT 1 FROM (SELECT COUNT(*),CONCAT(0x3a,version()) x) a)-- ",
            "1 and ascii(substring(user(),1,1))>64",
            "'; waitfor delay '0:0:5'--",
            "select @@version",
            "1 order by 10--",
            "2010-01-01'+sleep(20.to_i)+'",
            "' or true--",
            "1' having 1=1--",
            "SELECT name, password FROM users",
            "admin' -- -",
            "admin@juice-sh.op';",
            "A' AND 'B",
            "u_id[$ne]=2",
            "{\"$where\": \"sleep(100)\"}",
            "1.e(ascii 1.e(substring(1.e(select password from users limit 1 1.e,1 1.e) 1.e,1 1.e,1 1.e)1.e)",
            "id=password::int",
            "9999 or {if length((/*!5000select username/*!50000from*/user where id=1))>0}",
            "database()",
            "declare @b",
            "EXECUTE IMMEDIATE \"",
            " case when condition1 then result1",
            "';SELECT P",
            "from `information_schema`",
            "OR '{\"a\":2}' -> '$.c[2].f' = 7",
            "exec master.",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
    }

    #[test]
    fn passes_ordinary_text() {
        for benign in [
            "O'Brien",
            "O'Brien and sons",
            "rock & roll",
            "1/2 cup",
            "select a plan",
            "please select a plan from the list",
            "1 or 2 items",
            "salt and pepper",
            "Y'ALL COME BACK NOW",
            "3 TO 6 MONTHS",
            "it's 5 o'clock",
            "don't -- really",
            "\"Rock\" and \"Roll\"",
            "user@example.com",
            "2024-01-01T00:00:00Z",
            "id=42&sort=desc",
            "Union Station to Times Square",
            "DRESS WITH HAT 18';",
            "\"UNION\" BY ROBERT F",
            "\"INTO THE WILD\"",
            "7\" #2 CIRCULAR NEEDLE",
            "FOO BAR'# BLAH",
            " shabby \"and white",
            "select x from y where",
            "1; exec will create the case 7",
            "BAMBOO CHARCOAL SOAP 1 '#",
            "std::string",
            "price: $5",
        ] {
            assert!(!hit(benign), "flagged {benign:?}: {:?}", scan(benign));
        }
    }

    #[test]
    fn open_function_calls_and_numeric_probes() {
        for attack in [
            "COALESCE(",
            "concat (",
            "Uncompress (",
            "pow(",
            "user(\n",
            "selectect user(\n",
            "insert(",
            "div(23,-2)",
            "div (23.23 , 2)",
            "abs(-5)",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
        for benign in [
            "taxa of a lower (infraspecific) rank",
            "Rand (ZAR) exchange rate",
            "space (ideal for a family)",
            "please select space from the list",
            "select power from the menu",
            "sqrt(16)",
            "Just in case (abc)",
        ] {
            assert!(!hit(benign), "flagged {benign:?}: {:?}", scan(benign));
        }
    }

    #[test]
    fn obfuscated_keywords_and_break_outs() {
        for attack in [
            // Scrambled case.
            "UnIon seleCt\n",
            "uNioN  sElecT",
            // Quote, backtick and parenthesis break-outs.
            "'select H\n",
            "'x'!='y",
            ") like (",
            ")like(",
            "` AS `edit_user_id` from",
            "admin@juice-sh.op`;",
            // Clause chains, inserts, attack functions, catalogs.
            "SELECT x GROUP BY SOMETHING HAVING COUNT(Id) >= 9",
            ";RePLAcE/*test*/test/*test*/(id, name) VALUES (1, 'test');",
            "select pg_sleep",
            "tempdb",
            "mysql.db",
            // Hints with blanks, escaped punctuation.
            "9999 or /* +optimizer hint */ true",
            "md5\\(",
        ] {
            assert!(hit(attack), "missed {attack:?}");
        }
        for benign in [
            "Union Select Committee",
            "UNION SELECT",
            "union select",
            "'select' is a keyword",
            "'select all' button",
            "(see above) like this",
            "use `foo` as `bar` in the config",
            "run `ls -la` then `cat` the file",
            "mysql database tuning",
            "C:\\Users\\(me)",
            "I sleep well!",
            "having fun",
            "/* a comment */",
        ] {
            assert!(!hit(benign), "flagged {benign:?}: {:?}", scan(benign));
        }
    }

    #[test]
    fn hostile_input_is_bounded() {
        let long = "'".repeat(100_000) + &"(".repeat(100_000);
        let _ = scan(&long);
        let nested = "/*!".repeat(10_000);
        let _ = scan(&nested);
    }
}
