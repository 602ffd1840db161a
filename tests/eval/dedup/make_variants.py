"""Generate the duplicate cases of the dedup evaluation set, and its manifest.

    python tests/eval/dedup/make_variants.py

Deterministic: the same seeds give the same files. For every seed it writes one
republished variant of each kind in ``variants/`` (committed data, like the
hand-written non-duplicates in ``new/``), then ``manifest.json`` listing every case
with its kind and expected verdict (the seed's file name, or null for a new text).

Kinds:
  boilerplate          the text among another site's navigation, byline, cookie
                       notice, share buttons and "related stories"
  html                 the text in another site's HTML page (goes through extraction)
  light_edit           typo fixes, sentences dropped and merged, quotes straightened
  substitution         ~20% of the words replaced by synonyms
  first_half           the paragraphs of the first half
  last_half            the paragraphs of the second half
  reworded_first_half  first half with ~20% synonyms
  reworded_last_half   second half with ~20% synonyms
  html_reworded_middle the middle half, reworded, in an HTML page
"""

from __future__ import annotations

import html
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDS_DIR = HERE.parents[2] / "seeds"
VARIANTS_DIR = HERE / "variants"
NEW_DIR = HERE / "new"

SUBSTITUTION_RATE = 0.20

# Synonyms a rewording tool would use; one is picked per replaced word.
SYNONYMS: dict[str, list[str]] = {
    "protests": ["demonstrations", "rallies"],
    "protest": ["demonstration", "rally"],
    "protesters": ["demonstrators", "activists"],
    "demonstrators": ["protesters"],
    "demonstrations": ["protests"],
    "government": ["administration", "authorities", "cabinet"],
    "president": ["leader", "head of state"],
    "country": ["nation", "state"],
    "countries": ["nations", "states"],
    "said": ["stated", "declared", "noted"],
    "says": ["states", "notes"],
    "security": ["safety"],
    "unrest": ["turmoil", "disorder"],
    "political": ["politic"],
    "people": ["citizens", "residents", "persons"],
    "forces": ["troops", "units"],
    "troops": ["soldiers", "forces"],
    "foreign": ["overseas", "external"],
    "former": ["previous", "ex"],
    "city": ["town", "metropolis"],
    "response": ["reply", "reaction"],
    "fuel": ["petrol", "gasoline"],
    "including": ["among them", "such as"],
    "power": ["authority", "control"],
    "leaders": ["heads", "chiefs"],
    "killed": ["slain", "murdered"],
    "internal": ["domestic", "inner"],
    "military": ["armed forces", "army"],
    "prices": ["costs", "rates"],
    "price": ["cost", "rate"],
    "recent": ["latest", "new"],
    "arrested": ["detained", "apprehended"],
    "clear": ["evident", "obvious"],
    "against": ["versus"],
    "situation": ["state of affairs", "circumstances"],
    "violence": ["bloodshed", "brutality"],
    "authoritarian": ["autocratic", "dictatorial"],
    "called": ["urged", "demanded"],
    "opposition": ["resistance"],
    "national": ["nationwide", "state"],
    "help": ["assist", "aid"],
    "support": ["backing", "assistance"],
    "began": ["started", "commenced"],
    "restored": ["reestablished", "reinstated"],
    "sent": ["dispatched", "deployed"],
    "used": ["employed", "utilised"],
    "regime": ["government"],
    "force": ["might", "strength"],
    "involvement": ["participation", "role"],
    "region": ["area", "territory"],
    "authorities": ["officials"],
    "restraint": ["moderation", "calm"],
    "office": ["bureau"],
    "control": ["command"],
    "buildings": ["premises", "structures"],
    "building": ["premises", "structure"],
    "deployed": ["sent", "stationed"],
    "intervention": ["interference", "involvement"],
    "peaceful": ["nonviolent", "calm"],
    "suppressing": ["crushing", "quelling"],
    "popular": ["public", "widespread"],
    "various": ["several", "diverse"],
    "abroad": ["overseas"],
    "claimed": ["alleged", "asserted"],
    "summit": ["meeting", "conference"],
    "dozens": ["scores"],
    "deadly": ["lethal", "fatal"],
    "hundreds": ["scores"],
    "ongoing": ["continuing", "current"],
    "large": ["big", "huge"],
    "possible": ["potential", "likely"],
    "external": ["outside", "foreign"],
    "officials": ["functionaries", "authorities"],
    "violent": ["brutal", "bloody"],
    "accused": ["charged", "blamed"],
    "policies": ["measures", "strategies"],
    "send": ["dispatch", "deploy"],
    "escalation": ["intensification", "increase"],
    "across": ["throughout"],
    "alliance": ["coalition", "bloc"],
    "coalition": ["alliance", "bloc"],
    "gangs": ["groups", "bands"],
    "anger": ["fury", "rage"],
    "period": ["time", "phase"],
    "urged": ["called on", "pressed"],
    "airport": ["airfield", "air terminal"],
    "main": ["principal", "chief"],
    "earlier": ["previously", "before"],
    "declared": ["announced", "proclaimed"],
    "showing": ["displaying", "revealing"],
    "heard": ["audible"],
    "leader": ["head", "chief"],
    "police": ["law enforcement"],
    "reports": ["accounts"],
    "ministry": ["department"],
    "major": ["big", "significant"],
    "ally": ["partner", "friend"],
    "scale": ["size", "extent"],
    "streets": ["roads", "avenues"],
    "operation": ["campaign", "mission"],
    "mission": ["task", "operation"],
    "units": ["detachments"],
    "leave": ["depart", "exit"],
    "growing": ["increasing", "rising"],
    "crisis": ["emergency"],
    "disperse": ["scatter", "break up"],
    "quickly": ["rapidly", "swiftly"],
    "escalated": ["intensified", "grew"],
    "helped": ["assisted", "aided"],
    "speeches": ["addresses", "talks"],
    "speech": ["address", "talk"],
    "fighters": ["militants", "combatants"],
    "arrived": ["came", "landed"],
    "thousands": ["many thousands"],
    "extremists": ["radicals", "militants"],
    "announced": ["stated", "declared"],
    "injured": ["wounded", "hurt"],
    "detained": ["held", "arrested"],
    "struggle": ["fight", "battle"],
    "rival": ["competing", "opposing"],
    "current": ["present", "existing"],
    "activists": ["campaigners"],
    "face": ["confront"],
    "heavy": ["severe", "harsh"],
    "throughout": ["across"],
    "rights": ["liberties"],
    "pursue": ["follow"],
    "curb": ["restrain", "limit"],
    "reform": ["change", "overhaul"],
    "reforms": ["changes"],
    "request": ["appeal", "plea"],
    "nationwide": ["countrywide"],
    "vowed": ["promised", "pledged"],
    "asked": ["requested"],
    "head": ["chief", "leader"],
    "statement": ["announcement", "declaration"],
    "limited": ["restricted", "brief"],
    "closely": ["carefully"],
    "largest": ["biggest"],
    "citizens": ["people", "nationals"],
    "concerned": ["worried", "troubled"],
    "described": ["portrayed", "characterised"],
    "powerful": ["mighty", "influential"],
    "attempt": ["effort", "bid"],
    "escalating": ["intensifying", "worsening"],
    "storming": ["raiding", "attacking"],
    "difficult": ["hard", "tough"],
    "reported": ["announced"],
    "crackdown": ["clampdown", "repression"],
    "wages": ["pay", "salaries"],
    "increase": ["rise", "hike"],
    "expert": ["specialist", "analyst"],
    "elections": ["polls", "votes"],
    "election": ["poll", "vote"],
    "demands": ["claims"],
    "analysts": ["experts", "observers"],
    "issues": ["matters", "questions"],
    "certainly": ["surely", "definitely"],
    "protect": ["shield", "safeguard"],
    "surprised": ["astonished"],
    "stable": ["steady", "calm"],
    "civilians": ["non-combatants"],
    "shops": ["stores"],
    "attacked": ["assaulted"],
    "severe": ["harsh"],
    "independence": ["sovereignty"],
    "concern": ["worry", "unease"],
    "immediate": ["instant"],
    "cause": ["reason"],
    "frustrations": ["grievances"],
    "influence": ["sway", "clout"],
    "benefit": ["gain", "profit"],
    "prove": ["show", "demonstrate"],
    "massive": ["huge", "vast"],
    "brief": ["short"],
    "simply": ["merely", "just"],
    "arrest": ["detention"],
    "suspicion": ["suspected"],
    "approximately": ["about", "roughly"],
    "explains": ["describes"],
    "decisions": ["choices", "rulings"],
    "usually": ["generally", "normally"],
    "widely": ["broadly", "commonly"],
    "regarded": ["seen", "considered"],
    "grievances": ["complaints"],
    "economic": ["financial"],
    "inflated": ["high", "raised"],
    "solidarity": ["unity"],
    "previous": ["earlier", "prior"],
    "poor": ["bad"],
    "strike": ["walkout"],
    "pattern": ["template"],
    "property": ["assets"],
    "documentation": ["recording"],
    "goals": ["aims"],
    "objectives": ["aims", "targets"],
    "corruption": ["graft"],
    "directly": ["straight"],
    "appointed": ["named", "nominated"],
    "repeatedly": ["again and again"],
    "insistence": ["urging"],
    "detention": ["custody"],
    "prisons": ["jails"],
    "factors": ["elements", "reasons"],
    "eliminate": ["remove", "eradicate"],
    "strengthen": ["reinforce", "bolster"],
    "senior": ["high-ranking", "top"],
    "agencies": ["bodies"],
    "serious": ["grave"],
    "punishments": ["penalties"],
    "predicted": ["expected", "forecast"],
    "freedoms": ["liberties"],
    "hegemonic": ["dominant"],
    "dominance": ["supremacy"],
    "strategic": ["key", "vital"],
    "eventually": ["finally", "ultimately"],
    "dream": ["vision", "ambition"],
    "sudden": ["abrupt"],
    "challenge": ["test", "threat"],
    "gradually": ["slowly", "progressively"],
    "completing": ["finishing"],
    "participated": ["took part"],
    "sabotaging": ["undermining"],
    "completely": ["entirely", "totally"],
    "refer": ["point"],
    "uncertainty": ["doubt"],
    "speculation": ["conjecture"],
    "mysterious": ["puzzling", "strange"],
    "evidence": ["proof"],
    "calmed": ["quietened"],
    "guarding": ["protecting"],
    "effort": ["attempt"],
    "repairing": ["fixing", "mending"],
    "ransacked": ["looted", "plundered"],
}

# Fixes a careful editor makes to a machine-translated copy.
TYPO_FIXES = {
    "once morest": "against",
    "Kazakhastan": "Kazakhstan",
    "might be heard": "could be heard",
    "regarding": "about",
    "Zhanuzin": "Zhanaozen",
    "Magangstau": "Mangystau",
    "theOyan": "the Oyan",
    "Tokayevpolice": "Tokayev's police",
    "Tokayevto": "Tokayev's appeal to",
    "took place last. week": "last week",
    "Fathers abroad": "abroad",
    "  ": " ",
    "“": '"',
    "”": '"',
    "’": "'",
}

SITES = [
    {
        "name": "Central Asia Today",
        "nav": "Home | World | Central Asia | Politics | Business | Opinion | Video | Podcasts",
        "byline": "By Aigerim Sadykova, Staff Correspondent | Published 7 January 2022, 10:42 GMT",
        "cookie": "We use cookies to give you the best experience on our website. By continuing to browse the site you agree to our use of cookies. Manage your preferences in Settings.",
        "share": "Share this article: Facebook | Twitter | WhatsApp | Telegram | Email",
        "related": [
            "Oil prices climb as supply worries persist",
            "Uzbekistan unveils plan to modernise its railways",
            "Opinion: what the new year holds for the Caspian region",
            "Football: Astana sign Serbian defender on two-year deal",
        ],
        "footer": "© 2022 Central Asia Today. All rights reserved. Terms of use | Privacy policy | Contact us | Advertise with us",
    },
    {
        "name": "The Daily Courier",
        "nav": "News · Sport · Culture · Money · Travel · Weather · Newsletters · Log in",
        "byline": "Reuters and staff reports. Updated Jan 8, 2022.",
        "cookie": "This site uses cookies and similar technologies for analytics and personalised advertising. Accept all | Reject | Learn more",
        "share": "Follow us on Twitter and Instagram for breaking news.",
        "related": [
            "Markets: stocks slip on inflation fears",
            "Ten winter recipes to warm you up this weekend",
            "Review: the year's best crime novels",
        ],
        "footer": "Subscribe to our morning newsletter and never miss a story. The Daily Courier is a member of the Independent Press Standards Organisation.",
    },
    {
        "name": "Eurasia Wire",
        "nav": "EURASIA WIRE — Latest | Russia | Caucasus | Central Asia | Energy | Analysis | About",
        "byline": "Written by the Eurasia Wire newsdesk. Reading time: 6 minutes.",
        "cookie": "Cookie notice: we and our partners store information on your device. Click OK to consent.",
        "share": "Did you find this article useful? Support independent journalism — donate today.",
        "related": [
            "Georgia's ruling party faces new protests in Tbilisi",
            "Gas transit talks stall between Moscow and Kyiv",
            "Explainer: who runs Turkmenistan?",
            "Mongolia's copper boom and its discontents",
        ],
        "footer": "Eurasia Wire, 12 Rue de la Loi, Brussels. Tips: newsdesk@eurasiawire.example",
    },
]


def paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def words(paras: list[str]) -> int:
    return sum(len(p.split()) for p in paras)


def split_at(paras: list[str], share: float) -> int:
    """Index of the first paragraph after ``share`` of the words."""
    total, running = words(paras), 0
    for i, para in enumerate(paras):
        running += len(para.split())
        if running >= total * share:
            return i + 1
    return len(paras)


def first_half(paras: list[str]) -> list[str]:
    return paras[: split_at(paras, 0.5)]


def last_half(paras: list[str]) -> list[str]:
    return paras[split_at(paras, 0.5) :]


def middle_half(paras: list[str]) -> list[str]:
    return paras[split_at(paras, 0.25) : split_at(paras, 0.75)]


def _match_case(original: str, replacement: str) -> str:
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _split_word(word: str) -> tuple[str, str, str] | None:
    """(leading punctuation, word, trailing punctuation), or None for other tokens."""
    m = re.match(r"^(\W*)(\w+)(\W*)$", word)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def substitute(paras: list[str], rng: random.Random, rate: float = SUBSTITUTION_RATE) -> list[str]:
    """Replace about ``rate`` of all words by a synonym (as far as synonyms are known)."""
    pieces = [re.split(r"(\s+)", p) for p in paras]
    total = sum(1 for piece in pieces for w in piece if w.strip())
    slots = [
        (i, j)
        for i, piece in enumerate(pieces)
        for j, w in enumerate(piece)
        if (parts := _split_word(w)) and parts[1].lower() in SYNONYMS
    ]
    for i, j in rng.sample(slots, min(len(slots), round(total * rate))):
        lead, core, trail = _split_word(pieces[i][j])  # type: ignore[misc]
        pieces[i][j] = lead + _match_case(core, rng.choice(SYNONYMS[core.lower()])) + trail
    return ["".join(piece) for piece in pieces]


def light_edit(paras: list[str], rng: random.Random) -> list[str]:
    """Typos fixed, one sentence in nine dropped, some sentences merged."""
    edited = []
    for para in paras:
        for wrong, right in TYPO_FIXES.items():
            para = para.replace(wrong, right)
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", para)
        kept = [s for s in sentences if len(sentences) == 1 or rng.random() > 1 / 9]
        merged: list[str] = []
        for sentence in kept:
            if merged and rng.random() < 0.15 and merged[-1].endswith("."):
                merged[-1] = merged[-1][:-1] + ", and " + sentence[:1].lower() + sentence[1:]
            else:
                merged.append(sentence)
        edited.append(" ".join(merged))
    return edited


def with_boilerplate(title: str, paras: list[str], site: dict) -> str:
    lines = [
        site["nav"],
        site["cookie"],
        "",
        title,
        site["byline"],
        "",
        *("\n".join([p, ""]) for p in paras),
        site["share"],
        "",
        "Related stories",
        *(f"- {r}" for r in site["related"]),
        "",
        site["footer"],
    ]
    return "\n".join(lines).strip() + "\n"


def as_html(title: str, paras: list[str], site: dict) -> str:
    e = html.escape
    nav = "".join(
        f'<li><a href="/{e(x.strip().lower())}">{e(x.strip())}</a></li>' for x in re.split(r"[|·—]", site["nav"])
    )
    related = "".join(f'<li><a href="/story/{i}">{e(r)}</a></li>' for i, r in enumerate(site["related"]))
    body = "\n".join(f"      <p>{e(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{e(title)} | {e(site["name"])}</title>
  <meta property="og:title" content="{e(title)}">
  <meta property="og:site_name" content="{e(site["name"])}">
</head>
<body>
  <div class="cookie-banner" id="cookies"><p>{e(site["cookie"])}</p><button>OK</button></div>
  <header class="site-header">
    <a class="logo" href="/">{e(site["name"])}</a>
    <nav class="main-nav"><ul>{nav}</ul></nav>
  </header>
  <main>
    <article class="story">
      <h1>{e(title)}</h1>
      <p class="byline">{e(site["byline"])}</p>
{body}
      <div class="share">{e(site["share"])}</div>
    </article>
    <aside class="related"><h2>Related stories</h2><ul>{related}</ul></aside>
  </main>
  <footer class="site-footer"><p>{e(site["footer"])}</p></footer>
</body>
</html>
"""


def variants(title: str, paras: list[str], index: int) -> dict[str, tuple[str, str]]:
    """kind -> (file suffix, content) for one seed."""
    rng = random.Random(f"dedup-eval-{index}")
    site = SITES[index % len(SITES)]
    other = SITES[(index + 1) % len(SITES)]
    reworded = substitute(paras, rng)
    return {
        "boilerplate": (".txt", with_boilerplate(title, paras, site)),
        "html": (".html", as_html(title, paras, other)),
        "light_edit": (".txt", "\n\n".join(light_edit(paras, rng)) + "\n"),
        "substitution": (".txt", "\n\n".join(reworded) + "\n"),
        "first_half": (".txt", "\n\n".join(first_half(paras)) + "\n"),
        "last_half": (".txt", "\n\n".join(last_half(paras)) + "\n"),
        "reworded_first_half": (".txt", "\n\n".join(first_half(reworded)) + "\n"),
        "reworded_last_half": (".txt", "\n\n".join(last_half(reworded)) + "\n"),
        "html_reworded_middle": (
            ".html",
            as_html(title, middle_half(substitute(paras, rng)), site),
        ),
    }


def new_text_kind(name: str) -> str:
    prefix = name.split("_", maxsplit=1)[0]
    return {"event": "same_event", "quote": "same_event_quoting", "unrelated": "unrelated"}[prefix]


def main() -> None:
    VARIANTS_DIR.mkdir(exist_ok=True)
    cases = []
    for index, seed in enumerate(sorted(SEEDS_DIR.glob("*.txt"))):
        paras = paragraphs(seed.read_text(encoding="utf-8"))
        title = paras[0]
        for kind, (suffix, content) in variants(title, paras, index).items():
            path = VARIANTS_DIR / f"{seed.stem}__{kind}{suffix}"
            path.write_text(content, encoding="utf-8")
            cases.append({"file": f"variants/{path.name}", "kind": kind, "expected": seed.name})
    for path in sorted(NEW_DIR.glob("*.txt")):
        kind = new_text_kind(path.name)
        cases.append({"file": f"new/{path.name}", "kind": kind, "expected": None})
    manifest = {
        "description": "Dedup evaluation set: expected = the seed a case duplicates, or null for a new text.",
        "cases": cases,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (HERE / "manifest.json").write_text(text, encoding="utf-8")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
