"""Static vocabulary of synthetic worlds: countries, e-mail domains, user agents,
word pools and prompt templates.

Templates use ``{slot}`` for a word drawn from a pool (``POOLS``), ``{~name}``
for a synonym group (``SYNONYMS``; the first entry is the canonical wording),
``{@family}`` for a nested template family, and a few generated slots
(numbers, task ids, code snippets, passages; see :mod:`acctgraph.synth.text`).

Example:
    >>> from acctgraph.synth.vocab import COUNTRIES, FAMILIES
    >>> COUNTRIES[0].code, "travel-plan" in FAMILIES
    ('US', True)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


def _w(s: str) -> tuple[str, ...]:
    """Split a ``|``-separated pool."""
    return tuple(x.strip() for x in s.split("|") if x.strip())


def _raw(s: str) -> tuple[str, ...]:
    """Split a ``|``-separated pool keeping surrounding spaces."""
    return tuple(x for x in s.split("|") if x)


# ---------------------------------------------------------------- countries
@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    tz_minutes: tuple[int, ...]  # typical UTC offsets of the population (no DST)
    local_mail: tuple[str, ...] = ()


COUNTRIES: tuple[Country, ...] = (
    Country("US", 22.0, (-300, -300, -360, -420, -480, -480), ("comcast.net", "att.net", "verizon.net")),
    Country("IN", 9.0, (330,), ("rediffmail.com",)),
    Country("GB", 5.0, (0,), ("btinternet.com", "sky.com")),
    Country("DE", 5.0, (60,), ("web.de", "gmx.de", "t-online.de")),
    Country("BR", 5.0, (-180,), ("uol.com.br", "bol.com.br")),
    Country("FR", 4.0, (60,), ("orange.fr", "free.fr", "laposte.net")),
    Country("JP", 4.0, (540,), ("yahoo.co.jp", "docomo.ne.jp")),
    Country("CA", 3.0, (-300, -480), ("rogers.com",)),
    Country("KR", 3.0, (540,), ("naver.com", "daum.net")),
    Country("ID", 3.0, (420,), ()),
    Country("MX", 2.5, (-360,), ("prodigy.net.mx",)),
    Country("ES", 2.5, (60,), ("telefonica.net",)),
    Country("IT", 2.5, (60,), ("libero.it", "virgilio.it")),
    Country("AU", 2.0, (600, 480), ("bigpond.com",)),
    Country("NL", 2.0, (60,), ("ziggo.nl", "kpnmail.nl")),
    Country("PL", 2.0, (60,), ("wp.pl", "onet.pl")),
    Country("TR", 2.0, (180,), ("yandex.com.tr",)),
    Country("PH", 2.0, (480,), ()),
    Country("VN", 2.0, (420,), ()),
    Country("PK", 1.5, (300,), ()),
    Country("NG", 1.5, (60,), ()),
    Country("EG", 1.0, (120,), ()),
    Country("SE", 1.0, (60,), ("telia.com",)),
    Country("UA", 1.0, (120,), ("ukr.net",)),
    Country("AR", 1.0, (-180,), ()),
    Country("CO", 1.0, (-300,), ()),
    Country("ZA", 1.0, (120,), ()),
    Country("SG", 1.0, (480,), ("singnet.com.sg",)),
    Country("TW", 1.0, (480,), ("hinet.net",)),
    Country("IL", 1.0, (120,), ("walla.co.il",)),
    Country("HK", 0.8, (480,), ("netvigator.com",)),
    Country("CH", 0.8, (60,), ("bluewin.ch",)),
    Country("BD", 1.0, (360,), ()),
    Country("TH", 1.0, (420,), ()),
    Country("MY", 1.0, (480,), ()),
    Country("KE", 0.8, (180,), ()),
    Country("CL", 0.8, (-240,), ()),
    Country("PT", 0.8, (0,), ("sapo.pt",)),
    Country("RO", 0.8, (120,), ()),
    Country("CZ", 0.8, (60,), ("seznam.cz",)),
    Country("BE", 0.8, (60,), ("skynet.be",)),
    Country("AT", 0.6, (60,), ("aon.at",)),
    Country("IE", 0.6, (0,), ("eircom.net",)),
    Country("NZ", 0.5, (780,), ("xtra.co.nz",)),
    Country("DK", 0.5, (60,), ()),
    Country("NO", 0.5, (60,), ("online.no",)),
    Country("FI", 0.5, (120,), ()),
    Country("GR", 0.5, (120,), ()),
    Country("HU", 0.5, (60,), ("freemail.hu",)),
    Country("SA", 0.8, (180,), ()),
    Country("AE", 0.8, (240,), ()),
)
COUNTRY_INDEX: dict[str, int] = {c.code: i for i, c in enumerate(COUNTRIES)}

#: Big webmail providers and their global share among legitimate sign-ups.
WEBMAIL: tuple[tuple[str, float], ...] = (
    ("gmail.com", 0.52), ("outlook.com", 0.11), ("hotmail.com", 0.07), ("yahoo.com", 0.07),
    ("icloud.com", 0.07), ("proton.me", 0.025), ("aol.com", 0.01), ("zoho.com", 0.008),
    ("mail.com", 0.007), ("gmx.com", 0.007), ("fastmail.com", 0.005), ("tutanota.com", 0.004),
)
#: Throwaway/alias providers: used by a few privacy-minded people and by campaigns.
ALIAS_MAIL: tuple[str, ...] = ("duck.com", "simplelogin.com", "mailbox.org", "tuta.io", "pm.me",
                               "anonaddy.me", "cock.li", "firemail.cc")

# ---------------------------------------------------------------- domains and names
_DOM_A = _w("blue|north|bright|silver|green|red|clear|swift|quiet|deep|open|true|prime|urban|coastal|"
            "iron|maple|cedar|summit|harbor|river|stone|golden|lunar|solar|nova|pixel|vector|atlas|"
            "orbit|echo|delta|apex|zen|bold|wild|sage|amber|coral|frost")
_DOM_B = _w("labs|works|media|studio|systems|digital|cloud|data|logic|forge|hub|point|wave|craft|"
            "bridge|path|field|gate|line|base|mind|sense|shift|stack|nest|bay|leaf|peak|spark|loop")
_TLDS = _w("com|net|io|co|org|dev|app|ai|xyz|me|tech|info")
_COMPANY_A = _w("Northwind|Contoso|Fabrikam|Tailspin|Wingtip|Litware|Proseware|Adatum|Lucerne|"
                "Margie|Alpine|Coho|Fourth Coffee|Graphic Design|Humongous|Trey|Wide World|Woodgrove|"
                "Blue Yonder|Relecloud|Munson|Southridge|Consolidated|VanArsdel|Bellows")
_COMPANY_B = _w("Analytics|Insurance|Logistics|Health|Bank|Retail|Energy|Consulting|Software|Media|"
                "Pharma|Motors|Foods|Airlines|Telecom")


def domain_pool(n: int) -> list[str]:
    """``n`` plausible small-business / personal domains (deterministic)."""
    out = []
    for i, (a, b, t) in enumerate(itertools.product(_DOM_A, _DOM_B, _TLDS)):
        out.append(f"{a}{b}.{t}" if i % 3 else f"{a}-{b}.{t}")
        if len(out) >= n:
            break
    return out


def company_name(i: int) -> str:
    return f"{_COMPANY_A[i % len(_COMPANY_A)]} {_COMPANY_B[(i * 7 + 3) % len(_COMPANY_B)]}"


def company_domain(i: int) -> str:
    return company_name(i).lower().replace(" ", "") + (".com" if i % 4 else ".co")


_UNI = _w("Riverside|Lakeshore|Northgate|Westbrook|Hillcrest|Eastfield|Kingsbridge|Fairview|"
          "Brookhaven|Ashford")


def university_name(i: int) -> str:
    return f"{_UNI[i % len(_UNI)]} University"


def university_domain(i: int) -> str:
    suffix = ("edu", "ac.uk", "edu.au", "de", "edu.sg", "ac.jp")[i % 6]
    return f"{_UNI[i % len(_UNI)].lower()}.{suffix}" if suffix != "de" else f"uni-{_UNI[i % len(_UNI)].lower()}.de"


# ---------------------------------------------------------------- user agents
_CHROME = [f"Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
           for os in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64")
           for v in (118, 119, 120, 121, 122)]
_FIREFOX = [f"Mozilla/5.0 ({os}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
            for os in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10.15", "X11; Ubuntu; Linux x86_64")
            for v in (119, 120, 121)]
_SAFARI = [f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           f"Version/{v} Safari/605.1.15" for v in ("16.6", "17.1", "17.2")]
_MOBILE = [f"Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           f"Version/17.0 Mobile/15E148 Safari/604.1" for v in ("17_1", "17_2", "16_6")] + \
          [f"Mozilla/5.0 (Linux; Android {a}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) "
           f"Chrome/120.0.0.0 Mobile Safari/537.36" for a in (13, 14) for m in ("Pixel 7", "SM-S911B", "K")]
_EDGE = [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
         f"Safari/537.36 Edg/{v}.0.0.0" for v in (119, 120, 121)]
BROWSER_UAS: tuple[str, ...] = tuple(_CHROME + _FIREFOX + _SAFARI + _EDGE)
MOBILE_UAS: tuple[str, ...] = tuple(_MOBILE)
SDK_UAS: tuple[str, ...] = (
    "lumen-python/1.12.0", "lumen-python/1.14.2", "lumen-python/1.15.0", "lumen-node/4.2.1",
    "lumen-node/4.3.0", "python-httpx/0.25.2", "python-httpx/0.27.0", "python-requests/2.31.0",
    "python-requests/2.32.3", "aiohttp/3.9.5", "axios/1.6.8", "node-fetch/1.0", "undici",
    "Go-http-client/2.0", "okhttp/4.12.0", "PostmanRuntime/7.36.0", "curl/8.4.0", "curl/7.81.0",
    "langchain/0.1.4 python-httpx/0.27.0", "Java-http-client/17.0.9",
)

# ---------------------------------------------------------------- word pools
POOLS: dict[str, tuple[str, ...]] = {
    "dish": _w("lasagna|pad thai|chicken curry|banana bread|ramen|paella|shakshuka|tacos al pastor|risotto|"
               "pancakes|beef stew|vegetable soup|sourdough bread|bibimbap|falafel|lentil dal|pho|"
               "mac and cheese|chili con carne|moussaka|carbonara|butter chicken|gyoza|apple pie|"
               "brownies|greek salad|fried rice|quiche|goulash|empanadas|tiramisu|hummus|omelette|biryani"),
    "ingredient": _w("chickpeas|spinach|tofu|salmon|eggplant|mushrooms|quinoa|sweet potatoes|ground beef|"
                     "lentils|zucchini|feta|coconut milk|broccoli|chicken thighs|black beans|cauliflower|"
                     "rice noodles|oats|cottage cheese|shrimp|bell peppers|kale|potatoes|eggs"),
    "city": _w("Lisbon|Kyoto|Mexico City|Barcelona|Prague|Bangkok|Cape Town|Vancouver|Istanbul|Seoul|"
               "Buenos Aires|Marrakech|Reykjavik|Hanoi|Edinburgh|Vienna|Bali|Dubai|New York|Rome|Paris|"
               "Berlin|Tokyo|Sydney|Singapore|Amsterdam|Copenhagen|Budapest|Lima|Nairobi|Porto|Munich|"
               "Osaka|Taipei|Krakow|Dublin|Montreal|Chicago|San Francisco|Athens"),
    "language": _w("Spanish|French|German|Japanese|Korean|Italian|Portuguese|Mandarin|Hindi|Arabic|Dutch|"
                   "Polish|Turkish|Vietnamese|Indonesian|Swedish|Greek|Russian|Thai|Czech"),
    "first_name": _w("Alex|Maria|Sam|Priya|Jonas|Aiko|Lucas|Fatima|Noah|Chloe|Mateo|Sofia|Liam|Yuki|"
                     "Omar|Emma|Daniel|Ana|Kofi|Hannah|Ravi|Lena|Diego|Mei|Tom|Sara|Ivan|Zoe|Ali|Nina"),
    "relation": _w("mom|dad|sister|brother|boss|coworker|best friend|landlord|neighbor|grandmother|"
                   "professor|client|team|partner|roommate|teacher"),
    "occasion": _w("birthday|wedding|retirement|graduation|anniversary|farewell party|baby shower|"
                   "promotion|housewarming|team offsite|holiday dinner"),
    "job": _w("data analyst|nurse|software engineer|product manager|marketing coordinator|teacher|"
              "accountant|UX designer|project manager|sales representative|mechanical engineer|"
              "customer success manager|graphic designer|paralegal|pharmacist|electrician|chef|"
              "research assistant|HR generalist|financial advisor"),
    "skill": _w("public speaking|time management|Excel|negotiation|SQL|photography|touch typing|"
                "leadership|drawing|guitar|chess|meditation|budgeting|cooking|coding"),
    "product": _w("wireless earbuds|standing desk|electric bike|air fryer|robot vacuum|mechanical keyboard|"
                  "running shoes|coffee grinder|smartwatch|e-reader|noise-cancelling headphones|"
                  "office chair|tent|blender|monitor"),
    "hobby": _w("gardening|rock climbing|knitting|birdwatching|baking|woodworking|running|painting|"
                "board games|pottery|photography|hiking|yoga|fishing|chess|cycling"),
    "animal": _w("cat|dog|parrot|rabbit|hamster|turtle|goldfish|horse|guinea pig|ferret"),
    "topic": _w("black holes|the French Revolution|photosynthesis|inflation|the Roman Empire|"
                "machine learning|climate change|the stock market|vaccines|the immune system|"
                "plate tectonics|quantum computing|the Silk Road|blockchain|the Renaissance|"
                "supply and demand|the water cycle|DNA replication|compound interest|jet lag|"
                "the Cold War|volcanoes|sleep cycles|electric cars|the printing press|tides|"
                "the Olympics|coral reefs|antibiotics|the Big Bang"),
    "concept": _w("entropy|recursion|opportunity cost|natural selection|the placebo effect|"
                  "Bayes' theorem|cognitive dissonance|the Doppler effect|game theory|osmosis|"
                  "the central limit theorem|marginal utility|Occam's razor|the Pareto principle|"
                  "relativity|big O notation|confirmation bias|herd immunity|elasticity|torque"),
    "subject": _w("biology|chemistry|history|economics|physics|statistics|literature|psychology|"
                  "calculus|philosophy|sociology|geography|accounting|linear algebra"),
    "prog_lang": _w("Python|JavaScript|TypeScript|Java|C#|Go|Rust|C++|SQL|Bash|Kotlin|Swift|PHP|Ruby|R"),
    "lib": _w("pandas|React|Django|Flask|numpy|Express|Spring Boot|FastAPI|PyTorch|Tailwind|Next.js|"
              "SQLAlchemy|matplotlib|jQuery|Vue|Kubernetes|Docker|Terraform|Redis|PostgreSQL"),
    "error": _w("KeyError: 'id'|TypeError: cannot read properties of undefined|"
                "IndexError: list index out of range|NullPointerException|segmentation fault|"
                "ModuleNotFoundError: No module named 'requests'|CORS policy blocked the request|"
                "permission denied (publickey)|ECONNREFUSED 127.0.0.1:5432|"
                "ValueError: could not convert string to float|merge conflict in main.py|"
                "401 Unauthorized|OOMKilled|deadlock detected|SSL: CERTIFICATE_VERIFY_FAILED"),
    "tone": _w("friendly|formal|professional|casual|polite but firm|enthusiastic|apologetic|"
               "concise|warm|neutral|persuasive|diplomatic"),
    "audience": _w("a 10-year-old|my grandmother|a beginner|a busy executive|a high school student|"
                   "a new employee|someone with no technical background|an expert|my team|a customer"),
    "doc_kind": _w("cover letter|email|LinkedIn post|toast|thank-you note|complaint letter|"
                   "product description|bio|newsletter intro|resignation letter|meeting agenda|"
                   "press release|blog post|tweet|apology message|reference letter"),
    "exercise": _w("push-ups|a 5k run|squats|a beginner yoga routine|a home workout|a half marathon|"
                   "stretching|deadlifts|a cycling plan|swimming laps"),
    "symptom": _w("a headache|trouble sleeping|back pain|a sore throat|feeling tired all the time|"
                  "seasonal allergies|a stiff neck|heartburn|dry skin|stress"),
    "genre": _w("mystery|science fiction|fantasy|romance|thriller|historical fiction|horror|comedy|"
                "non-fiction|poetry|biography|graphic novel"),
    "adj": _w("short|funny|heartfelt|simple|detailed|quick|creative|clear|catchy|professional|"
              "rhyming|motivational|gentle|honest"),
    "weekday": _w("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"),
    "month": _w("January|February|March|April|May|June|July|August|September|October|November|December"),
    "cmd": _w("pwd|ls -la|cat /etc/os-release|whoami|uname -a|df -h|top|echo hello|mkdir test|"
              "git status|ps aux|cd /var/log|date|history|python3 --version"),
    "role": _w("travel guide|motivational coach|career counselor|stand-up comedian|personal trainer|"
               "math teacher|poet|storyteller|debate coach|life coach|nutritionist|interviewer|"
               "Socratic tutor|spreadsheet|SQL terminal|English teacher"),
    "data_kind": _w("sales figures|survey responses|log files|customer reviews|sensor readings|"
                    "transactions|support tickets|web analytics|grades|inventory records"),
    "course": _w("CS 101|ECON 201|BIO 110|PSYCH 150|MATH 221|HIST 130|PHYS 140|STAT 200|CHEM 105|"
                 "PHIL 120|ENG 210|SOC 101"),
    "review": _w("The battery lasts forever and it charges fast|Arrived broken and support never replied|"
                 "Decent value but the strap feels cheap|Absolutely love it, would buy again|"
                 "It stopped working after two weeks|Too loud for a small apartment|"
                 "Exactly as described, quick delivery|The app keeps crashing on my phone|"
                 "Comfortable and stylish, runs a bit small|Not worth the price"),
    "listing": _w("Vintage oak desk, great condition, $120 OBO|iPhone 13 128GB unlocked - 390 EUR|"
                  "2 bed apartment near station, 1450/month|Road bike size M, new tires, 300|"
                  "Set of 6 dining chairs, 80 for all|Canon EOS 250D with 18-55 lens 420 GBP|"
                  "PS5 slim + 2 controllers 430|Standing desk electric 140x70 250"),
    "sentence": _w("The meeting has been moved to Thursday afternoon|Our quarterly revenue grew slightly|"
                   "Please remember to submit your timesheets|The weather will be sunny this weekend|"
                   "The train was delayed by twenty minutes|We are looking forward to your visit|"
                   "The new policy takes effect next month|I could not find the file you mentioned|"
                   "The concert was better than expected|Thank you for your patience|"
                   "The package should arrive by Friday|Let us know if you have any questions"),
    # campaign pools
    "science_q": _w("why ice floats on water|how vaccines train the immune system|"
                    "what limits the efficiency of solar cells|why the sky is blue|"
                    "how CRISPR edits genes|what causes superconductivity|how neurons transmit signals|"
                    "why catalysts speed up reactions|how black holes evaporate|what determines protein folding|"
                    "how lithium-ion batteries degrade|why enzymes are temperature sensitive|"
                    "how gravitational waves are detected|what drives ocean currents|"
                    "how transistors switch|why some isotopes are radioactive|how the Haber process works|"
                    "why metals conduct electricity|how mRNA is translated into protein|what sets the speed of sound|"
                    "how stars fuse heavier elements|why water has a high heat capacity|how lasers produce coherent light|"
                    "why antibiotic resistance spreads|how plate boundaries create earthquakes|what makes a material "
                    "magnetic|how the kidney filters blood|why quantum tunnelling occurs|how photosynthesis stores "
                    "energy|what limits the resolution of microscopes|how fuel cells generate electricity|why glass is "
                    "transparent|how the immune system distinguishes self from non-self|what causes the seasons|"
                    "how entropy relates to information|why the universe is expanding|how semiconductors are doped|"
                    "how neural networks approximate functions"),
    "science_angle": _w("at the molecular level|in extreme conditions|according to current research|"
                        "compared with classical predictions|and how it is measured|and its practical applications|"
                        "with the relevant equations|for a graduate student|with a worked numerical example|"
                        "and the common misconceptions|from a historical perspective|and the open problems"),
    "sens_aspect": _w("the death toll|the official narrative|the role of the military|international reactions|"
                      "media coverage at the time|how school textbooks describe it|legal consequences for participants|"
                      "how it is commemorated today|the leaders involved|declassified documents|eyewitness accounts|"
                      "economic consequences|the censorship that followed|how foreign press reported it|"
                      "what remains disputed|its influence on later policy|the timeline of events|public opinion polls"),
    "puzzle_obj": _w("coins|boxes|hats|switches|doors|cards|keys|weights|islanders|prisoners|"
                     "bridges|lamps|marbles|clocks|chess pieces"),
    "algo": _w("binary search|Dijkstra's shortest path|an LRU cache|a trie|merge sort|a rate limiter|"
               "topological sort|a min-heap|union-find|a bloom filter|an interval tree|"
               "a consistent-hash ring|a token bucket|a thread pool|a JSON parser|a regex matcher|"
               "an event loop|a B-tree|a skip list|a producer-consumer queue|KMP string search|"
               "a sudoku solver|k-means clustering|a matrix multiplier|an expression evaluator"),
    "tool": _w("search_web|read_file|write_file|run_python|query_database|send_email|get_weather|"
               "create_calendar_event|list_directory|http_get|execute_shell|fetch_stock_price|"
               "translate_text|resize_image|git_commit"),
    "agent_goal": _w("find the cheapest flight from {city} to {city2} next month|"
                     "summarise the open issues in the repository and propose fixes|"
                     "book a table for four in {city} on {weekday}|"
                     "compile a report of {data_kind} for last quarter|"
                     "fix the failing unit tests in the project|"
                     "migrate the database schema and update the ORM models|"
                     "compare three {product} models and recommend one|"
                     "download the dataset, clean it and plot the trend|"
                     "triage new support tickets and draft replies|"
                     "refactor the payment module to use async IO"),
    "site": _w("example-shop.com|news.example.org|docs.python.org|wiki.example.net|flights.example.com|"
               "jobs.example.io|maps.example.com|forum.example.dev"),
    "sensitive_topic": _w("the 1989 Tiananmen Square protests|the status of Taiwan|press freedom in Hong Kong|"
                          "internment camps in Xinjiang|the Dalai Lama|censorship of search engines|"
                          "the Great Firewall|term limits for heads of state|the Umbrella Movement|"
                          "independent trade unions|the South China Sea dispute|the Cultural Revolution|"
                          "surveillance of journalists|election monitoring|the Great Leap Forward famine|"
                          "protest movements and their suppression"),
    "stance_group": _w("human rights organisations|foreign governments|historians|exiled dissidents|"
                       "international journalists|legal scholars|the United Nations|student activists"),
}
POOLS["city2"] = POOLS["city"]

SYNONYMS: dict[str, tuple[str, ...]] = {
    "please": _w("Please|Could you|Can you|Kindly|I need you to|Would you"),
    "explain": _w("explain|describe|walk me through|break down|clarify|tell me about"),
    "write": _w("write|draft|compose|put together|create|come up with"),
    "solve": _w("Solve|Work out|Figure out|Answer|Determine|Compute"),
    "stepbystep": _w("Think step by step|Reason step by step|Work through it one step at a time|"
                     "Go through your reasoning carefully|Lay out each step of your thinking|"
                     "Break the reasoning into explicit steps"),
    "showwork": _w("show your complete reasoning before the final answer|"
                   "show all intermediate reasoning, then state the answer|"
                   "include your full chain of thought and then the answer|"
                   "write out every step and end with the final answer|"
                   "give the detailed derivation first and the result last"),
    "final": _w("Final answer|Answer|Result|Conclusion|Solution"),
    "implement": _w("Implement|Write|Code|Build|Create|Develop"),
    "efficient": _w("efficient|optimal|fast|clean|production-quality|well-structured"),
    "tests": _w("include unit tests|add tests|write test cases|cover it with tests|add a few pytest tests"),
    "review": _w("Review|Critique|Audit|Check|Examine|Look over"),
    "issues": _w("bugs, edge cases and performance problems|problems and possible bugs|"
                 "correctness issues and style problems|security issues and bugs|"
                 "anything that could go wrong"),
    "rewrite": _w("Rewrite|Rephrase|Reformulate|Reword|Restate|Paraphrase"),
    "neutral": _w("neutral and academic|balanced and factual|objective|encyclopedic|"
                  "impartial and scholarly|dispassionate"),
    "available": _w("You have access to the following tools|Available tools|Tools you can call|"
                    "You may use these tools|The tools below are available"),
    "respond_json": _w("Respond with a JSON tool call|Reply only with the tool call as JSON|"
                       "Output the next action as JSON|Return your next step as a JSON object|"
                       "Answer with a single JSON function call"),
    "compare": _w("Compare|Contrast|Weigh|Set side by side|Evaluate"),
    "perspectives": _w("the official position and the position of {stance_group}|"
                       "the government's view and that of {stance_group}|"
                       "the views of the authorities and of {stance_group}|"
                       "how state media and {stance_group} describe it"),
}

PRE_CASUAL: tuple[str, ...] = ("",) * 12 + _raw("hi! |hey, |hello, |quick question: |ok so |Hi there. |"
                                            "hey |Good morning! |sorry if this is dumb but |"
                                            "Question: |Help me out: |yo |pls help: |Quick one - |I was wondering: |"
                                            "need help: |Hi, |Hello! |asking for a friend: |So, ")
POST_CASUAL: tuple[str, ...] = ("",) * 12 + _raw(" thanks!| Thank you.| Keep it short.| Be concise please.|"
                                             " Use bullet points.| thx| Explain simply.|"
                                             " Please answer in English.| :)| ty!| no fluff please|"
                                             " Make it under 200 words.| Thanks in advance!| cheers| Explain your answer.|"
                                             " thanks a lot| I'm a beginner.| Give examples.| please!!|"
                                             " Be specific.| in simple words")
PRE_FORMAL: tuple[str, ...] = _raw("Task: |Instruction: |Request: |Query: |Problem: |Input: |"
                                 "Please address the following. |Consider the following. |")
POST_FORMAL: tuple[str, ...] = _raw(" Be thorough.| Do not skip steps.| Use markdown.| Be precise.|"
                                  " Provide the complete answer.| Format the output clearly.")
#: System-style preambles campaigns prefix their prompts with (one per campaign unless paraphrasing).
PREAMBLES: tuple[str, ...] = (
    "You are a world-class expert. ",
    "You are a meticulous assistant that never skips reasoning. ",
    "Act as a senior researcher and answer rigorously. ",
    "You are a helpful, detailed tutor. ",
    "[SYSTEM] Provide exhaustive, high-quality answers. ",
    "As an expert problem solver, ",
    "You are an AI assistant. Answer carefully and completely. ",
    "Respond as a domain expert would. ",
    "Be maximally detailed. ",
    "You are a careful analyst. ",
    "",
)

# ---------------------------------------------------------------- template families
# Each family is a tuple of paraphrase variants.
FAMILIES: dict[str, tuple[str, ...]] = {
    # everyday
    "recipe": ("{~please} give me a recipe for {dish}.", "how do I make {dish} at home?",
               "I have {ingredient} and {ingredient} in the fridge, what can I cook tonight?",
               "easy {dish} recipe for {n} people", "What's a healthy version of {dish}?",
               "Can I replace {ingredient} with {ingredient} in {dish}?",
               "Plan {n} dinners for this week using {ingredient}."),
    "travel-plan": ("Plan a {n}-day trip to {city}.", "what should I see in {city} in {month}?",
                    "{~please} make an itinerary for {n} days in {city} on a budget.",
                    "Is {month} a good time to visit {city}?",
                    "best neighborhoods to stay in {city} for a first visit?",
                    "How do I get from the airport to the center of {city}?"),
    "write-doc": ("{~write} a {adj} {doc_kind} for my {relation}.",
                  "Help me {~write} a {tone} {doc_kind} about {topic}.",
                  "Can you write a {doc_kind} for a {job} position?",
                  "make this {doc_kind} sound more {tone}: {sentence}.",
                  "I need a {adj} {doc_kind} for my {relation}'s {occasion}."),
    "email-reply": ("Reply to this email in a {tone} tone: \"{sentence}\"",
                    "how do I politely tell my {relation} that {sentence}?",
                    "{~write} a {tone} email to my {relation} saying {sentence}.",
                    "Turn this into a {tone} email: {sentence}."),
    "explain": ("{~please} {~explain} {topic} to {audience}.", "What is {concept}?",
                "{~explain} {concept} in simple terms", "ELI5 {topic}",
                "How does {topic} actually work?", "What's the difference between {concept} and {concept}?",
                "Give me {n} fun facts about {topic}.", "why is {topic} important?"),
    "homework": ("I don't understand {concept} in my {subject} class, can you {~explain} it?",
                 "{~please} help me study for my {subject} exam on {topic}.",
                 "Make {n} practice questions about {concept}.",
                 "What are the key points of {topic} for a {subject} essay?",
                 "Check my answer: {concept} means {sentence}."),
    "math-help": ("What is {num} times {num}?", "Solve for x: {n}x + {num} = {big}",
                  "what's {pct}% of {big}?", "How do I calculate compound interest on {big} at {n}% for {n} years?",
                  "Convert {num} miles to kilometers.", "Is {big} a prime number?",
                  "If I save {num} a month, how long until I have {big}?"),
    "code-help": ("How do I fix \"{error}\" in {prog_lang}?", "I'm getting {error} when using {lib}, any idea why?",
                  "{~please} {~explain} this {prog_lang} code:\n{code}",
                  "How do I read a CSV file in {prog_lang}?",
                  "What's the best way to learn {lib}?", "Why is this slow?\n{code}",
                  "Convert this to {prog_lang}:\n{code}", "write a {prog_lang} function that {algo_task}"),
    "career": ("How do I prepare for a {job} interview?", "Is it worth switching from {job} to {job}?",
               "What skills do I need to become a {job}?", "{~please} review my resume summary: {sentence}.",
               "How do I ask my {relation} for a raise?", "salary negotiation tips for a {job}"),
    "health": ("What helps with {symptom}?", "Is it normal to have {symptom} after {exercise}?",
               "Make me a beginner plan for {exercise}.", "How many calories are in {dish}?",
               "tips to build a habit of {exercise}", "How much water should I drink when training for {exercise}?"),
    "creative": ("Write a {adj} poem about {topic}.", "Tell me a story about a {animal} who loves {hobby}.",
                 "Give me {n} names for a {animal}.", "Write a {genre} short story set in {city}.",
                 "Make up a joke about {job}s.", "Write song lyrics about {occasion} in the style of {genre}."),
    "recommend": ("Recommend {n} {genre} books.", "What {product} should I buy under {num} dollars?",
                  "good {hobby} gear for beginners?", "Suggest {n} gift ideas for my {relation} who likes {hobby}.",
                  "Which is better, {product} or {product}?", "{genre} movies like Inception?"),
    "translate": ("Translate to {language}: {sentence}", "How do you say \"{sentence}\" in {language}?",
                  "translate this into {language} please: {sentence}",
                  "What does this mean in English? (it's {language}) {sentence}"),
    "summarise": ("Summarize this: {passage}", "tl;dr please: {passage}",
                  "Give me the key points of the following text:\n{passage}",
                  "Summarise in {n} bullet points:\n{passage}", "Make this shorter: {passage}"),
    "data-help": ("How do I make a pivot table of {data_kind} in Excel?",
                  "Which chart is best for {data_kind}?", "Write a SQL query to find duplicate {data_kind}.",
                  "How do I clean messy {data_kind} with {lib}?", "Explain this formula: =VLOOKUP(A2,Sheet2!A:C,{n},FALSE)"),
    "pet": ("Why does my {animal} keep {hobby_verb}?", "What should I feed a {animal}?",
            "how often should I take my {animal} to the vet?", "Is it safe for a {animal} to eat {ingredient}?"),
    "reasoning-casual": ("{~stepbystep}: if I have {n} {puzzle_obj} and lose {k}, how many are left?",
                         "Think step by step and tell me whether {big} is divisible by {n}.",
                         "Can you reason through this riddle? {n} {puzzle_obj}, one is fake, find it in {k} weighings.",
                         "Let's think step by step. My train leaves at {hh}:15 and the trip takes {num} minutes; when do I arrive?"),
    # public templates used verbatim (apart from the tail) by thousands of unrelated people
    "public-linux": ("I want you to act as a linux terminal. I will type commands and you will reply with what the "
                     "terminal should show. I want you to only reply with the terminal output inside one unique code "
                     "block, and nothing else. do not write explanations. do not type commands unless I instruct you "
                     "to do so. When I need to tell you something in English, I will do so by putting text inside "
                     "curly brackets {{like this}}. My first command is {cmd}",
                     "I want you to act as a linux terminal. I will type commands and you will reply with what the "
                     "terminal should show. My first command is {cmd}"),
    "public-travel": ("You are a helpful travel planner. Create a detailed day-by-day itinerary for my trip to {city} "
                      "for {n} days, including sights, food and transport tips. My budget is {num} USD.",
                      "You are a helpful travel planner. Plan {n} days in {city} for a {hobby} lover."),
    "public-english": ("I want you to act as an English translator, spelling corrector and improver. I will speak to "
                       "you in any language and you will detect the language, translate it and answer in the corrected "
                       "and improved version of my text, in English. Keep the meaning same, but make them more "
                       "literary. I want you to only reply the correction, the improvements and nothing else, do not "
                       "write explanations. My first sentence is \"{sentence}\"",),
    "public-interviewer": ("I want you to act as an interviewer. I will be the candidate and you will ask me the "
                           "interview questions for the {job} position. I want you to only reply as the interviewer. "
                           "Do not write all the conversation at once. Ask me the questions and wait for my answers. "
                           "My first sentence is \"Hi\"",),
    "public-actas": ("I want you to act as a {role}. {~please} stay in character. My first request is about {topic}.",
                     "Act as a {role} and help me with {skill}."),
    "public-prompt-gen": ("You are an expert prompt engineer. Improve the following prompt so that it gets better "
                          "results, and explain your changes: \"{~write} a {doc_kind} about {topic}\"",),
    # solo-bot jobs: highly regular templated requests
    "bot-sentiment": ("Classify the sentiment of this review as positive, negative or neutral. Review: {review}",),
    "bot-extract": ("Extract the item, price and currency as JSON from this listing: {listing}",),
    "bot-translate": ("Translate the following text to {language}. Output only the translation.\n\n{sentence}",),
    "bot-summary": ("Summarize the following article in one sentence.\n\nARTICLE:\n{passage}",),
    "bot-tag": ("Return 5 comma-separated tags for this product title: {product} {adj} edition {num}",),
    # campaign template sets
    "cot-math": ("{~solve} the following problem. {~stepbystep} and {~showwork}.\n\n{@math_problem}",
                 "{@math_problem}\n\n{~stepbystep}, and {~showwork}. Finish with '{~final}: <value>'.",
                 "Problem #{task}:\n{@math_problem}\n{~stepbystep}.",
                 "{~stepbystep}. {@math_problem} Give a detailed explanation of every step."),
    "cot-science": ("{~explain} {science_q} {science_angle}. {~stepbystep} and {~showwork}.",
                    "Question {task}: {science_q}? Answer {science_angle}. {~stepbystep}, citing the underlying "
                    "principles.",
                    "Provide a rigorous, first-principles explanation of {science_q} {science_angle}, reasoning step "
                    "by step. Assume a temperature of {num} K where relevant."),
    "cot-logic": ("{~solve} this puzzle: there are {num} {puzzle_obj}, exactly one differs in weight, you have a "
                  "balance scale and up to {k} weighings may be misreported. What is the minimum number of weighings? {~stepbystep} and {~showwork}.",
                  "Logic task {task}: {big} rounds are played; {n} people each wear a hat that is red or blue. They see the others' hats but "
                  "not their own. Devise a strategy that maximises correct guesses. {~stepbystep}.",
                  "{~stepbystep}: a clock shows {hh}:{min2}. What is the angle between the hands, and when is the next time "
                  "after {hh}:{min2} that the angle equals {num} tenths of a degree? {~showwork}.",
                  "Argument {task}. Evaluate: 'All {puzzle_obj} are {adj}; some {puzzle_obj} are {adj2}; therefore some "
                  "{adj} things are {adj2}.' Is it valid? {~stepbystep}."),
    "code-implement": ("{~implement} {algo} in {prog_lang} for inputs of up to {big} elements. It must be {~efficient}; {~tests}. "
                       "Explain your design decisions step by step before the code.",
                       "Task {task}: {~implement} {algo} in {prog_lang} with full type annotations and docstrings, "
                       "then analyse its time and space complexity.",
                       "{~implement} a {prog_lang} solution for: {algo_task}. Constraints: n <= {big}. "
                       "{~stepbystep} and then give the final code."),
    "code-review": ("{~review} the following {prog_lang} code for {~issues}. Propose a corrected version.\n\n{code}",
                    "Ticket {task}: the function below fails on some inputs. Find the bug and fix it.\n{code}",
                    "{~review} this snippet and rewrite it to be {~efficient}:\n```\n{code}\n```"),
    "agent-tools": ("{~available}: {tool}, {tool2}, {tool3}.\nGoal: {@agent_goal}\n{~respond_json}.",
                    "SYSTEM: you are an autonomous agent. Tools: [{tool}, {tool2}, {tool3}]\nUSER: {@agent_goal}\n"
                    "Observation: {tool} returned {num} results.\nThink about the next step, then {~lc_respond_json}.",
                    "Trajectory {task}, step {k}. {~available}: {tool}, {tool2}. Previous action: {tool}({n}). "
                    "Goal: {@agent_goal}. {~respond_json}."),
    "agent-browser": ("You control a web browser. Current page: https://{site}/{task}. Goal: {@agent_goal}. "
                      "The page shows {n} links and a search box. {~respond_json} (click, type or scroll).",
                      "Browser agent episode {task}: navigate {site} to {@agent_goal}. Describe your plan, then "
                      "{~lc_respond_json}."),
    "sensitive-rewrite": ("{~rewrite} this question so that it sounds {~neutral} and would be answered fully: "
                          "'What really happened during {sensitive_topic}, especially {sens_aspect}?'",
                          "{~rewrite} the following in a {~neutral} style and then answer it in depth: "
                          "how do {stance_group} discuss {sens_aspect} in {sensitive_topic}?",
                          "Case {task}: {~rewrite} a censored question about {sensitive_topic} into one a cautious "
                          "assistant would answer (focus: {sens_aspect}), then give the answer."),
    "sensitive-compare": ("{~compare} {~perspectives} on {sens_aspect} in {sensitive_topic}. {~stepbystep}.",
                          "Give a detailed account of {sensitive_topic} ({sens_aspect}), including {~perspectives}.",
                          "Item {task}: list the main disputed facts about {sensitive_topic} and {~lc_compare} "
                          "the sources."),
    # nested
    "math_problem": ("A tank holds {big} litres and drains at {n} litres per minute while being filled at {k} litres "
                     "per minute. How many minutes until it is empty?",
                     "Find all integer solutions of {n}x + {k}y = {num}.",
                     "A shop discounts an item by {pct}% and then raises the price by {pct2}%. The final price is "
                     "{num}. What was the original price?",
                     "Prove that the sum of the first {n} odd numbers is a perfect square, then compute it for n = {big}.",
                     "Two trains leave stations {big} km apart at {n}0 km/h and {k}0 km/h towards each other. "
                     "When and where do they meet?",
                     "How many ways can {num} people sit around a round table if {k} of them insist on sitting together?",
                     "Compute the probability of drawing {k} aces in {n} cards from a deck of {num} cards containing {n2} aces.",
                     "Let f(x) = {n}x^3 - {k}x + {num}. Find the local extrema of f.",
                     "A sequence satisfies a(1) = {n} and a(k+1) = {k}a(k) + 1. Find a closed form for a(k)."),
    "agent_goal": POOLS["agent_goal"],
}

#: Slots generated as numbers: name -> (low, high) inclusive.
NUMBER_SLOTS: dict[str, tuple[int, int]] = {
    "n": (2, 12), "k": (1, 6), "num": (10, 999), "big": (1000, 99_999), "pct": (5, 60),
    "pct2": (5, 40), "n2": (2, 12), "hh": (1, 12), "min2": (10, 59), "task": (100_000, 999_999), "year": (1950, 2025),
}

LEGIT_FAMILIES: tuple[str, ...] = (
    "recipe", "travel-plan", "write-doc", "email-reply", "explain", "homework", "math-help", "code-help",
    "career", "health", "creative", "recommend", "translate", "summarise", "data-help", "pet",
    "reasoning-casual")
PUBLIC_FAMILIES: tuple[str, ...] = (
    "public-linux", "public-travel", "public-english", "public-interviewer", "public-actas",
    "public-prompt-gen")
BOT_FAMILIES: tuple[str, ...] = ("bot-sentiment", "bot-extract", "bot-translate", "bot-summary", "bot-tag")

POOLS["hobby_verb"] = _w("scratching the sofa|barking at night|hiding|chewing cables|sleeping all day|"
                         "meowing at 5am|pulling on the leash|ignoring food")
POOLS["adj2"] = POOLS["adj"]
POOLS["algo_task"] = _w("removes duplicates from a list|merges two sorted arrays|parses a date string|"
                        "counts word frequencies|validates an email address|flattens a nested list|"
                        "finds the longest palindrome|checks balanced parentheses|rotates a matrix|"
                        "computes a moving average|reverses a linked list|groups anagrams|"
                        "retries an HTTP request with backoff|deduplicates records by key|"
                        "computes the median of a stream")
POOLS["tool2"] = POOLS["tool"]
POOLS["tool3"] = POOLS["tool"]


def company_template(i: int) -> tuple[str, ...]:
    """The internal prompt template of company ``i`` (employees paraphrase it a little)."""
    name = company_name(i)
    kind = ("customer ticket", "sales call transcript", "incident report", "contract clause",
            "pull request description", "claim note")[i % 6]
    return (f"[{name} assistant] Summarise the following {kind} #{{task}} and suggest next steps in a "
            f"{{tone}} tone: {{passage}}",
            f"[{name} assistant] {{~please}} summarise this {kind} (ref {{task}}) for my {{relation}}: {{passage}}",
            f"{name} internal: draft a {{tone}} reply to {kind} {{task}}. Context: {{sentence}}.")


def university_template(i: int) -> tuple[str, ...]:
    """The assignment of university ``i``; students paraphrase it."""
    topic = ("the causes of {topic}", "{concept} and its applications", "the role of {topic} in modern society",
             "a critical analysis of {concept}", "{topic}: evidence and open questions",
             "how {concept} explains everyday phenomena")[i % 6]
    return (f"{{course}} assignment {{k}}: write a 1500-word essay on {topic}.",
            f"help me with my {{course}} essay about {topic}",
            f"I have to write an essay on {topic} for {{course}}, due tomorrow. Can you outline it?",
            f"{{~please}} {{~explain}} {topic} for my {{course}} assignment",
            f"give me a thesis statement and {{n}} arguments for an essay on {topic}",
            f"essay on {topic} {{course}} due tonight, where do I start??")


# ---------------------------------------------------------------- generated pools
_FN = _w("process|compute|parse|merge|load|handle|update|transform|validate|fetch|build|normalize|"
         "aggregate|filter|encode")
_NOUN = _w("items|records|users|orders|events|rows|tokens|nodes|values|payload|config|matrix|prices|"
           "logs|scores")
_BODY = (
    "    result = []\n    for i in range(len({a})):\n        if {a}[i] not in result:\n            result.append({a}[i])\n    return result",
    "    total = 0\n    for x in {a}:\n        total += x\n    return total / len({a})",
    "    d = {{}}\n    for r in {a}:\n        d[r['id']] = d.get(r['id'], 0) + 1\n    return sorted(d, key=d.get)[-1]",
    "    while {a}:\n        x = {a}.pop(0)\n        if x > 0:\n            yield x * 2",
    "    try:\n        return json.loads({a})['data']\n    except Exception:\n        return None",
    "    out = [0] * len({a})\n    for i in range(1, len({a})):\n        out[i] = out[i - 1] + {a}[i]\n    return out",
    "    if not {a}:\n        return -1\n    mid = len({a}) // 2\n    return {a}[mid] if len({a}) % 2 else ({a}[mid] + {a}[mid + 1]) / 2",
    "    with open({a}) as f:\n        return [line.split(',') for line in f.read().split('\\n')]",
)


def code_snippets() -> list[str]:
    """A few thousand small, distinct Python functions (deterministic)."""
    out = []
    for fn, noun, (bi, body) in itertools.product(_FN, _NOUN, enumerate(_BODY)):
        arg = noun if (bi + len(fn)) % 2 else noun[:-1] + "_list"
        out.append(f"def {fn}_{noun}({arg}):\n" + body.format(a=arg))
    return out


_S_SUBJ = _w("The committee|Our team|The city council|The researchers|The company|My neighbor|The school|"
             "The new manager|The local library|The startup|The hospital|The museum")
_S_VERB = _w("announced|postponed|reviewed|approved|criticised|launched|expanded|cancelled|discussed|"
             "celebrated|investigated|redesigned")
_S_OBJ = _w("a new recycling program|the annual budget|the renovation plans|a community garden|"
            "the hiring policy|an online course|the summer festival|the parking rules|a mentoring scheme|"
            "the quarterly report|a customer survey|the software upgrade")
_S_TAIL = _w("after months of debate|despite some objections|earlier than expected|with broad support|"
             "to mixed reactions|following a public consultation|without much notice|for the third time")


def passage_sentences() -> list[str]:
    """Sentences used to build pasted passages (deterministic)."""
    return [f"{s} {v} {o} {t}." for s, v, o, t in itertools.product(_S_SUBJ, _S_VERB, _S_OBJ, _S_TAIL)]
