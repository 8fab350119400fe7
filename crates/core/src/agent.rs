//! User agents: bot detection and the families analytics and redirect rules speak of.
//!
//! Analytics report families, not versions or models: an iPhone runs `iOS`, a Windows 11
//! laptop `Windows`, Samsung's browser is `Samsung Internet`. The family tokens below are
//! checked in an order that resolves the well-known impersonations (every Chromium
//! browser says `Chrome` and `Safari`, Edge says `Chrome`, iOS browsers say `Safari`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    /// iPhone, iPad (when it says so) and iPod.
    Ios,
    /// Android phones and tablets.
    Android,
    /// Windows.
    Windows,
    /// macOS.
    MacOs,
    /// Linux desktops (not Android, not ChromeOS).
    Linux,
    /// ChromeOS.
    ChromeOs,
    /// Anything else, or unknown.
    Other,
}

impl Os {
    /// Every family, `Other` last.
    pub const ALL: [Os; 7] = [
        Os::Ios,
        Os::Android,
        Os::Windows,
        Os::MacOs,
        Os::Linux,
        Os::ChromeOs,
        Os::Other,
    ];

    /// The name analytics report (`iOS`, `macOS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Ios => "iOS",
            Os::Android => "Android",
            Os::Windows => "Windows",
            Os::MacOs => "macOS",
            Os::Linux => "Linux",
            Os::ChromeOs => "ChromeOS",
            Os::Other => "Other",
        }
    }

    /// The lower-case name redirect rules use (`ios`, `macos`, …).
    pub fn key(self) -> &'static str {
        match self {
            Os::Ios => "ios",
            Os::Android => "android",
            Os::Windows => "windows",
            Os::MacOs => "macos",
            Os::Linux => "linux",
            Os::ChromeOs => "chromeos",
            Os::Other => "other",
        }
    }
}

/// Browser family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Browser {
    /// Google Chrome and Chromium (Chrome on iOS too).
    Chrome,
    /// Apple Safari (including the in-app Safari views of iOS).
    Safari,
    /// Mozilla Firefox (Firefox on iOS too).
    Firefox,
    /// Microsoft Edge (Chromium and legacy).
    Edge,
    /// Opera.
    Opera,
    /// Samsung Internet.
    Samsung,
    /// Internet Explorer.
    InternetExplorer,
    /// Anything else, or unknown.
    Other,
}

impl Browser {
    /// Every family, `Other` last.
    pub const ALL: [Browser; 8] = [
        Browser::Chrome,
        Browser::Safari,
        Browser::Firefox,
        Browser::Edge,
        Browser::Opera,
        Browser::Samsung,
        Browser::InternetExplorer,
        Browser::Other,
    ];

    /// The name analytics report (`Chrome`, `Samsung Internet`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Browser::Chrome => "Chrome",
            Browser::Safari => "Safari",
            Browser::Firefox => "Firefox",
            Browser::Edge => "Edge",
            Browser::Opera => "Opera",
            Browser::Samsung => "Samsung Internet",
            Browser::InternetExplorer => "Internet Explorer",
            Browser::Other => "Other",
        }
    }

    /// The lower-case name redirect rules use (`chrome`, `samsung`, …).
    pub fn key(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Safari => "safari",
            Browser::Firefox => "firefox",
            Browser::Edge => "edge",
            Browser::Opera => "opera",
            Browser::Samsung => "samsung",
            Browser::InternetExplorer => "ie",
            Browser::Other => "other",
        }
    }
}

/// Device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// Desktops and laptops.
    Desktop,
    /// Phones.
    Mobile,
    /// Tablets.
    Tablet,
    /// Anything else, or unknown (bots included).
    Other,
}

impl Device {
    /// Every class, `Other` last.
    pub const ALL: [Device; 4] = [
        Device::Desktop,
        Device::Mobile,
        Device::Tablet,
        Device::Other,
    ];

    /// The name analytics report and rules use (`desktop`, `mobile`, `tablet`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Other => "other",
        }
    }
}

/// What a user agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAgentClass {
    /// A known bot, crawler or link-preview fetcher.
    pub is_bot: bool,
    /// Browser family.
    pub browser: Browser,
    /// Operating system family.
    pub os: Os,
    /// Device class.
    pub device: Device,
}

/// Link-preview fetchers and headless agents that the bot list may miss.
const EXTRA_BOT_PATTERNS: &[&str] = &[
    "whatsapp",
    "telegrambot",
    "discordbot",
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "linkedinbot",
    "facebookexternalhit",
    "facebookcatalog",
    "skypeuripreview",
    "embedly",
    "iframely",
    "vkshare",
    "pinterest",
    "redditbot",
    "applebot",
    "mastodon",
    "bitlybot",
    "quora link preview",
    "google-inspectiontool",
    "headlesschrome",
];

fn bots() -> &'static isbot::Bots {
    static BOTS: OnceLock<isbot::Bots> = OnceLock::new();
    BOTS.get_or_init(|| {
        let mut bots = isbot::Bots::default();
        bots.append(EXTRA_BOT_PATTERNS);
        bots
    })
}

/// Whether a user agent is a known bot or link-preview crawler (the maintained `isbot`
/// pattern list plus preview fetchers). An absent agent is not judged a bot.
pub fn is_bot(user_agent: &str) -> bool {
    !user_agent.is_empty() && bots().is_bot(user_agent)
}

fn os_of(ua: &str) -> Os {
    // iOS first: iOS agents say "like Mac OS X"; Android before Linux (it says Linux too);
    // ChromeOS says "X11; CrOS".
    if ["iPhone", "iPad", "iPod", "iOS"]
        .iter()
        .any(|t| ua.contains(t))
    {
        Os::Ios
    } else if ua.contains("Android") {
        Os::Android
    } else if ua.contains("CrOS") {
        Os::ChromeOs
    } else if ua.contains("Windows") {
        Os::Windows
    } else if ua.contains("Macintosh") || ua.contains("Mac OS X") {
        Os::MacOs
    } else if ua.contains("Linux") || ua.contains("X11") {
        Os::Linux
    } else {
        Os::Other
    }
}

fn browser_of(ua: &str) -> Browser {
    // The most specific token first: every Chromium browser also says Chrome and Safari.
    if ua.contains("SamsungBrowser/") {
        Browser::Samsung
    } else if ["Edg/", "EdgA/", "EdgiOS/", "Edge/"]
        .iter()
        .any(|t| ua.contains(t))
    {
        Browser::Edge
    } else if ["OPR/", "OPT/", "Opera"].iter().any(|t| ua.contains(t)) {
        Browser::Opera
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        Browser::Firefox
    } else if ua.contains("MSIE ") || ua.contains("Trident/") {
        Browser::InternetExplorer
    } else if [
        "YaBrowser/",
        "Vivaldi/",
        "UCBrowser/",
        "DuckDuckGo/",
        "Brave/",
    ]
    .iter()
    .any(|t| ua.contains(t))
    {
        Browser::Other
    } else if ua.contains("CriOS/") || ua.contains("Chrome/") || ua.contains("Chromium/") {
        Browser::Chrome
    } else if ua.contains("Safari/") || (ua.contains("AppleWebKit/") && ua.contains("Mobile/")) {
        Browser::Safari
    } else {
        Browser::Other
    }
}

fn device_of(ua: &str, os: Os) -> Device {
    if ua.contains("iPad") || ua.contains("Tablet") || ua.contains("Kindle") {
        return Device::Tablet;
    }
    match os {
        // Android phones say "Mobile"; Android tablets don't.
        Os::Android if ua.contains("Mobile") => Device::Mobile,
        Os::Android => Device::Tablet,
        Os::Ios => Device::Mobile,
        Os::Windows | Os::MacOs | Os::Linux | Os::ChromeOs => {
            if ua.contains("Mobile") || ua.contains("Phone") {
                Device::Mobile
            } else {
                Device::Desktop
            }
        }
        Os::Other if ua.contains("Mobi") => Device::Mobile,
        Os::Other => Device::Other,
    }
}

/// Classifies a user agent into families and [`is_bot`].
pub fn classify_user_agent(user_agent: Option<&str>) -> UserAgentClass {
    let ua = user_agent.unwrap_or_default().trim();
    let is_bot = is_bot(ua);
    let os = os_of(ua);
    UserAgentClass {
        is_bot,
        browser: browser_of(ua),
        os,
        device: if is_bot {
            Device::Other
        } else {
            device_of(ua, os)
        },
    }
}

/// [`classify_user_agent`] with a memory of recent agents: real traffic repeats a few
/// thousand agents, and the bot patterns cost far more than the rest of a click's way to
/// the store. Shared by every caller (the analytics worker, redirect rules).
#[derive(Debug, Default)]
pub struct Classifier {
    agents: HashMap<Arc<str>, UserAgentClass, foldhash::fast::RandomState>,
}

/// Agents a [`Classifier`] remembers; past that it starts over (cheaper than tracking
/// recency, and the frequent agents are back within a batch).
pub(crate) const REMEMBERED_AGENTS: usize = 4096;
/// Longer agents are classified each time, never remembered.
pub(crate) const LONGEST_REMEMBERED_AGENT: usize = 512;

impl Classifier {
    /// The class of `user_agent`, remembered or worked out.
    pub fn classify(&mut self, user_agent: Option<&str>) -> UserAgentClass {
        let agent = user_agent.unwrap_or_default();
        if let Some(class) = self.agents.get(agent) {
            return *class;
        }
        let class = classify_user_agent(Some(agent));
        if agent.len() <= LONGEST_REMEMBERED_AGENT {
            if self.agents.len() >= REMEMBERED_AGENTS {
                self.agents.clear();
            }
            self.agents.insert(agent.into(), class);
        }
        class
    }

    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.agents.len()
    }
}

/// [`Classifier`] for many threads at once (redirect rules look at the user agent on
/// the redirect path): a bounded concurrent cache of recent agents.
pub(crate) struct SharedClassifier {
    agents: quick_cache::sync::Cache<
        Box<str>,
        UserAgentClass,
        quick_cache::UnitWeighter,
        foldhash::fast::RandomState,
    >,
}

impl Default for SharedClassifier {
    fn default() -> Self {
        SharedClassifier {
            agents: quick_cache::sync::Cache::with(
                REMEMBERED_AGENTS,
                REMEMBERED_AGENTS as u64,
                quick_cache::UnitWeighter,
                foldhash::fast::RandomState::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
        }
    }
}

impl std::fmt::Debug for SharedClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClassifier")
    }
}

impl SharedClassifier {
    /// The class of `user_agent`, remembered or worked out.
    pub(crate) fn classify(&self, user_agent: Option<&str>) -> UserAgentClass {
        let agent = user_agent.unwrap_or_default();
        if let Some(class) = self.agents.get(agent) {
            return class;
        }
        let class = classify_user_agent(Some(agent));
        if agent.len() <= LONGEST_REMEMBERED_AGENT {
            self.agents.insert(agent.into(), class);
        }
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real user agents, with the families they must give: (agent, os, browser, device, bot).
    const CORPUS: &[(&str, Os, Browser, Device, bool)] = &[
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::Windows,
            Browser::Chrome,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::MacOs,
            Browser::Chrome,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::Linux,
            Browser::Chrome,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::ChromeOs,
            Browser::Chrome,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X706B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            Os::Ios,
            Browser::Safari,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            Os::Ios,
            Browser::Safari,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
            Os::Ios,
            Browser::Safari,
            Device::Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            Os::Ios,
            Browser::Chrome,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15",
            Os::Ios,
            Browser::Firefox,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15",
            Os::Ios,
            Browser::Edge,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 340.0.0.22.109",
            Os::Ios,
            Browser::Safari,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            Os::MacOs,
            Browser::Safari,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:132.0) Gecko/20100101 Firefox/132.0",
            Os::MacOs,
            Browser::Firefox,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
            Os::Windows,
            Browser::Firefox,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            Os::Linux,
            Browser::Firefox,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
            Os::Linux,
            Browser::Firefox,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0",
            Os::Android,
            Browser::Firefox,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Android 13; Tablet; rv:131.0) Gecko/131.0 Firefox/131.0",
            Os::Android,
            Browser::Firefox,
            Device::Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            Os::Windows,
            Browser::Edge,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            Os::MacOs,
            Browser::Edge,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36 EdgA/131.0.2903.87",
            Os::Android,
            Browser::Edge,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
            Os::Windows,
            Browser::Edge,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
            Os::Windows,
            Browser::Opera,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36 OPR/85.0.0.0",
            Os::Android,
            Browser::Opera,
            Device::Mobile,
            false,
        ),
        (
            "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
            Os::Windows,
            Browser::Opera,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            Os::Android,
            Browser::Samsung,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36",
            Os::Android,
            Browser::Samsung,
            Device::Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
            Os::Windows,
            Browser::InternetExplorer,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
            Os::Windows,
            Browser::InternetExplorer,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
            Os::Windows,
            Browser::Other,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
            Os::Windows,
            Browser::Other,
            Device::Desktop,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/537.36 (KHTML, like Gecko) Silk/3.68 like Chrome/39.0.2171.93 Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Tablet,
            false,
        ),
        (
            "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
            Os::Android,
            Browser::Edge,
            Device::Mobile,
            false,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 7; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36",
            Os::Android,
            Browser::Chrome,
            Device::Mobile,
            false,
        ),
        ("curl/8.5.0", Os::Other, Browser::Other, Device::Other, true),
        (
            "Wget/1.21.4",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "python-requests/2.32.3",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Go-http-client/2.0",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36",
            Os::Other,
            Browser::Chrome,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Twitterbot/1.0",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "WhatsApp/2.23.20.0 A",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "TelegramBot (like TwitterBot)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
            Os::Linux,
            Browser::Chrome,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            Os::Other,
            Browser::Other,
            Device::Other,
            true,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            Os::MacOs,
            Browser::Safari,
            Device::Other,
            true,
        ),
        ("", Os::Other, Browser::Other, Device::Other, false),
    ];

    #[test]
    fn families_of_a_corpus_of_real_agents() {
        assert!(CORPUS.len() >= 50, "{} agents", CORPUS.len());
        for &(ua, os, browser, device, bot) in CORPUS {
            let c = classify_user_agent(Some(ua));
            assert_eq!(
                (c.os, c.browser, c.device, c.is_bot),
                (os, browser, device, bot),
                "{ua}"
            );
        }
        assert_eq!(classify_user_agent(None).device, Device::Other);
    }

    #[test]
    fn vocabularies_are_families_not_versions() {
        let names: Vec<&str> = Os::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "iOS", "Android", "Windows", "macOS", "Linux", "ChromeOS", "Other"
            ]
        );
        for &(ua, ..) in CORPUS {
            let c = classify_user_agent(Some(ua));
            assert!(!c.os.as_str().chars().any(|ch| ch.is_ascii_digit()), "{ua}");
            assert!(
                !c.browser.as_str().chars().any(|ch| ch.is_ascii_digit()),
                "{ua}"
            );
        }
    }

    #[test]
    fn remembered_agents_classify_as_fresh_ones() {
        let mut classifier = Classifier::default();
        for round in 0..2 {
            for i in 0..REMEMBERED_AGENTS + 10 {
                let agent = match i % 4 {
                    0 => Some(format!("{} build/{i}", CORPUS[0].0)),
                    1 => Some(CORPUS[7].0.to_string()),
                    2 => Some(CORPUS[43].0.to_string()),
                    _ => None,
                };
                let (fresh, remembered) = (
                    classify_user_agent(agent.as_deref()),
                    classifier.classify(agent.as_deref()),
                );
                assert_eq!(fresh, remembered, "round {round}, agent {i}");
            }
        }
        assert!(classifier.remembered() <= REMEMBERED_AGENTS);
        let long = "x".repeat(LONGEST_REMEMBERED_AGENT + 1);
        let before = classifier.remembered();
        classifier.classify(Some(&long));
        assert_eq!(classifier.remembered(), before, "long agents are not kept");
    }
}
