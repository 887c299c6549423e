"""The phrases of doubt: about, or a possible flaw in, a reply's own output (DOUBT, and in
code comments CODE_DOUBT), hedges on a short reply's claim (HEDGE), and what a reply with
code says about its reading of the task or its limits (CODE_NOTES). gateway/cues.py holds
the refusals and questions, and finds every table's phrases in one pass.
"""

from __future__ import annotations

from gateway.cue_search import Cue, cue, each

_FIRST = r"\b(?:i'm|i am|i remain|i was)(?: still)? "

_OWN = (
    r"\b(?:this|it|that|the (?:code|solution|script|answer|approach|function|query|regex|example"
    r"|snippet|above|implementation|formula|estimate|result|output|command|fix|patch|figure"
    r"|numbers?|information))(?: above| below| here)? "
)
_MINE = r"(?:this|my|the (?:above|code|solution|approach|implementation|script|query|regex))\b"
_CHECKED = (
    r"(?:tested|test|run|ran|executed|execute|verified|verify|checked|check|compiled|compile)"
)
_ADVERB = (
    r"(?:actually |personally |yet |been able to |fully |thoroughly |able to |yet been |been )?"
)
# What it did not do (test, run) or what its output may not do (work, be correct).
_UNSURE_OF = (
    _ADVERB
    + _CHECKED
    + r"\b|(?:work|be (?:correct|accurate|right|exact|optimal|complete|reliable|perfect|100%)"
    r"|handle|compile|cover|catch|account)\b"
)
# Who: "i have" + "n't tested", "this code has" + "n't been run", "it might" + " not work".
_SUBJECT = (
    r"\b(?:i|we|i've|we've|i'm|we're)(?: have| did| could| ca| can| was| were| had| am| will| wo)?"
    r"|\b(?:this|it|that|the \w+|my \w+)(?: \w+)? (?:has|have|is|was|might|may|could|will|wo"
    r"|would)(?: still)?"
)

# Self-flag: doubt about, or a possible flaw in, its own output.
DOUBT: tuple[Cue, ...] = (
    cue(
        "not-sure",
        r"sure\b",
        r"certain\b",
        r"confident\b",
        r"positive\b",
        before=_FIRST + r"(?:\w+ ){0,2}(?:not (?:at all )?(?:[\w%]+ )?|un)"
        r"|\bcan(?:'t|not) be (?:[\w%]+ )?"
        r"|\bnot (?:entirely|completely|totally|100%|quite|fully|very) ",
    ),
    cue(
        "not-sure",
        *each("doubtful|hesitant|clueless"),
        before=_FIRST + r"(?:\w+ ){0,2}",
    ),
    cue("low-confidence", r"confidence\b", before=r"\b(?:low|little|no real|limited|not much) "),
    cue("low-confidence", r"uncertainty\b", before=r"\bwith (?:\w+ )?"),
    cue(
        "low-confidence",
        r"my confidence (?:isn't|is not) (?:very )?high\b",
        r"my confidence (?:is|on this is) (?:very )?low\b",
        r"doubts? about my\b",
        r"doubting myself\b",
        r"without (?:any )?guarantees?\b",
    ),
    cue(
        "from-memory",
        *each("if memory serves|if my memory serves"),
        r"if i'm not mistaken\b",
        r"as far as i (?:know|can tell|recall)\b",
        r"under the impression\b",
        r"my (?:initial |first )?(?:impression|instinct|hunch)\b",
        r"my (?:initial|first) (?:thought|guess)\b",
        r"i want to say\b",
        r"leaning towards?\b",
        r"inclined to think\b",
        r"from what i (?:can )?(?:remember|recall)\b",
        r"to the best of my (?:knowledge|recollection|memory)\b",
        r"rings a bell\b",
        *each("vague|faint|some|hazy", r" (?:recollection|memory|idea)\b"),
        r"i seem to (?:remember|recall)\b",
        r"vaguely (?:recall|remember)\b",
    ),
    cue(
        "take-with-salt",
        r"grain of salt\b",
        r"don't quote me\b",
        r"shot in the dark\b",
        r"hazard a guess\b",
        r"grasping at straws\b",
        *each("stab in the dark|long shot|wild shot|pure speculation"),
        *each("can't say|cannot say|don't know|do not know", r" for (?:sure|certain)\b"),
        *each("can't guarantee|cannot guarantee|can not guarantee"),
        *each("if i had to", r" (?:guess|say|pick|bet)\b"),
        r"my memory (?:on this )?(?:is|isn't) (?:\w+ )?(?:hazy|foggy|fuzzy|unreliable)\b",
    ),
    cue(
        "not-an-expert",
        r"not an? (?:\w+ )?(?:doctor|physician|lawyer|attorney|professional|expert|specialist"
        r"|therapist|accountant|financial advisor|engineer|nutritionist|pharmacist)\b",
        r"no (?:expert|doctor|lawyer|professional|specialist)\b",
        r"not (?:a )?(?:licensed|qualified|certified)\b",
        before=_FIRST + r"(?:\w+ )?",
    ),
    cue(
        "i-sense",
        r"i have (?:a|an|the|only a|just a) (?:\w+ ){0,2}(?:feeling|hunch|sense|notion|inkling"
        r"|impression|recollection|memory)\b",
        *each("from what i gather|from what i can gather|from what i understand|from what i've"),
        r"my (?:best |rough |gut )?(?:estimate|understanding is|gut|hunch"
        r"|sources (?:are|say|suggest))\b",
        *each("barely|faintly|dimly", r" (?:recall|remember)\b"),
        r"i hesitate to\b",
        r"doubt (?:my|the accuracy|its accuracy|whether this)\b",
        r"throwing (?:a|it|this|that|the) (?:\w+ )?out there\b",
        *each("for what it's worth|i'm just guessing|i am just guessing|i'm guessing"),
    ),
    cue("wouldnt-bet", r"wouldn't (?:stake|bet|swear) (?:anything|much|my|on)\b"),
    cue("speculative", r"speculative\b", before=r"\b(?:purely|highly|very|is|this is) "),
    cue("unchecked", r"n't (?:" + _UNSURE_OF + ")", before=_SUBJECT),
    cue("unchecked", r"not (?:" + _UNSURE_OF + ")", before=f"(?:{_SUBJECT}) " + r"|\b(?:i|we) can"),
    cue(
        "unchecked",
        r"unable to " + _CHECKED + r"\b",
        before=r"\b(?:i'm|i am|we're|we are|i was) (?:currently )?",
    ),
    cue(
        "unchecked",
        *each("untested|unverified"),
        r"without (?:testing|running|verifying) (?:it|th)",
    ),
    cue("assumes", r"assuming (?:that |you\b|your |the |this |a |an |it )"),
    cue(
        "assumes",
        r"assum(?:es|e|ed|ing|ptions?)\b",
        before=_OWN
        + r"|\bi(?:'m| am|'ve|'ll| have| will)? |\b(?:make|made|making|my|these|some|key|main) ",
    ),
    cue(
        "may-contain-errors",
        r"contain (?:some )?(?:errors|bugs|mistakes|inaccuracies)\b",
        before=r"\b(?:might|may|could) ",
    ),
    cue(
        "could-be-wrong",
        r"wrong\b",
        r"mistaken\b",
        before=r"\bi (?:could|might|may) (?:very )?(?:well )?be |\bcorrect me if i'm ",
    ),
    cue("recall", r"if i (?:recall|remember) (?:correctly|right)\b"),
    cue(
        "my-knowledge",
        r"my (?:knowledge\b(?! (?:of|base|graph))|(?:last )?training (?:cutoff|cut-off|data)\b)",
    ),
    cue(
        "guess",
        r"guess(?:ing)?\b",
        before=r"\b(?:my|a|i'm|i am|i|i'd|i'll|had to|just|wild|complete|total|rough|educated"
        r"|pure)(?: \w+)? ",
    ),
    cue("i-suspect", r"i suspect\b", r"i'd (?:have|need) to (?:check|look|double-check|verify)"),
    cue(
        "please-verify",
        r"double[- ]check (?:this|that|it|these|my|the (?:code|output|result|answer|numbers"
        r"|figures|details|information|syntax|above))\b",
        r"verify (?:this|that|it|these|my|the (?:code|output|result|answer|numbers|figures"
        r"|details|information|syntax|above))\b",
        before=r"\b(?:please|you (?:should|may want to|might want to|'ll want to|will want to)"
        r"|be sure to|make sure to|i'd|i would|i recommend you|i'd recommend you|i'd) ",
    ),
    cue("caveat", r"caveats?\b"),
    cue(
        "flaw-in-own",
        r"potential (?:issue|problem|bug|flaw|limitation)s? (?:with|in) " + _MINE,
        r"possible (?:issue|problem|bug|flaw|limitation)s? (?:with|in) " + _MINE,
    ),
)

# Hedges on the claim of a short reply ("possibly 1844", "it might have been X"). In a
# longer reply the same words qualify a detail, not the answer.
HEDGE: tuple[Cue, ...] = (
    cue(
        "hedge",
        *each("possibly|perhaps|maybe|presumably|probably|potentially|likely|conceivabl", r"\w*"),
        *each(
            "might|may|could", r" (?:well )?(?:have been|be|have(?! to\b)|possibly|potentially)\b"
        ),
        *each("appears|seems", r" to (?:be|have)\b"),
        *each("it's possible|it is possible|is it possible|possible answer|potential answer"),
        *each("tentative|i believe|i recall|comes to mind|would seem|rough estimate|hints at"),
        *each("tentatively|some indication|seem to suggest|seems to suggest|inclined to say"),
        *each("lean towards|lean toward|leans towards|leans toward|plausibl", r"\w*"),
        *each("seems|sounds|appears|feels", r" (?:that|like|plausible|possible|right|familiar)\b"),
        *each("unreliable|shaky|sparse|unsubstantiated|inconclusive|conflicting|unverified"),
        *each("i'll go with|i'd go with|i'll say|i'd say|i'll put forward|i'll venture|stands out"),
        r"i think\b(?! (?:of|about)\b)",
    ),
    cue("hedge", *each("sure|certain|confident"), before=r"\b(?:pretty|fairly|reasonably|almost) "),
    cue(
        "hedge",
        *each("points|pointed|point|leads|led", r" (?:to|towards|toward)\b"),
        *each(
            "suggests|suggested|suggest|indicates|indicated|indicate|hints|mentions|mentioned"
            "|lists|gives|states",
            r"\b",
        ),
        before=r"\b(?:one|a|some|another|an|few|obscure|single|unreliable|vague|faint|weak|might"
        r"|limited|sparse|preliminary|available|i have|i've seen|i found|sources)(?: [\w-]+){0,3} ",
    ),
    cue(
        "hedge",
        *each("chance|possibility|suggestion"),
        before=r"\b(?:a|one|some|good|small|slight|slim|remote|any) ",
    ),
)

# Extra cues read only in the comments of code the model wrote.
CODE_DOUBT: tuple[Cue, ...] = (
    cue("fixme", r"fixme\b", r"xxx\b", r"hack\b", r"todo\b"),
    cue("assumes", r"assum(?:es|e|ing|ption)\b"),
)

# Read in a reply that carries code, in its prose and its comments: its reading of a
# requirement that may be ambiguous, and the limits it admits of what it wrote.
CODE_NOTES: tuple[Cue, ...] = (
    cue(
        "my-reading",
        r"interpret(?:ed|ing|ation)\b",
        before=r"\b(?:i|i've|i have|i'm|i am|my|one|your|this|the) (?:\w+ )?",
    ),
    cue(
        "my-reading",
        r"my (?:reading|understanding|interpretation|assumption)\b",
        r"if (?:you|by \w+ you) (?:meant|mean|intended|intend|wanted)\b",
        r"if i (?:understood|understand|read) (?:\w+ )?(?:correctly|right)\b",
        *each(
            "i took|i take|i read", r" (?:this|that|it|the requirement|your \w+) (?:to mean|as)\b"
        ),
    ),
    cue(
        "ambiguous",
        *each("ambiguous|unclear|not clear|underspecified|not specified"),
        before=r"(?<!anything )(?<!something )(?<!if )\b(?:is|was|seems|are|were|it's|that's|bit"
        r"|somewhat|a little|slightly|left) ",
    ),
    cue(
        "ambiguous",
        *each("specify|say|mention|state", r"\b"),
        before=r"\b(?:you|the (?:requirement|prompt|question|spec|task|description)s?)"
        r" (?:didn't|did not|don't|do not|doesn't|does not) ",
    ),
    cue(
        "limitation",
        r"limitations?\b",
        before=r"\b(?:one|a|known|main|key|current|some|its|this|the|obvious|important) ",
    ),
    cue("limitation", r"known (?:issue|bug|problem)s?\b", r"placeholder\b"),
    cue(
        "limitation",
        r"not (?:yet |currently )?(?:implemented|handled|covered|supported)\b",
        r"edge cases?\b(?! (?:are|is) (?:handled|covered))",
    ),
)
