"""The phrases the text classifier looks for: refusals, questions, doubt and hedges.

Each phrase is a regex that opens with a literal word (gateway/cue_search.py finds them all in
one pass), plus what must come just before it. Every pattern runs on lowercased text with
typographic apostrophes made plain.
"""

from __future__ import annotations

from gateway.cue_search import Cue, Finder, Found, Hits, cue, each

__all__ = ["Cue", "Found", "Hits", "first", "scan"]

_TASK = (
    r"(?:help(?! but| it\b| thinking)|assist|comply|provide|fulfil|fulfill|create|write|generate"
    r"|produce|give|offer|share|support|engage|answer|complete|make|recommend|encourage|condone"
    r"|endorse|participate|partake|suggest|advise|promote|discuss|facilitate|justify|satisfy"
    r"|speculate|do (?:that|this|it|so|what)|tell you (?:the|what|which|where|who|whether"
    r"|how to|exact|current)|in good conscience)"
)
_FIRST = r"\b(?:i'm|i am|i remain|i was)(?: still)? "
_I = r"\b(?:i|we) (?:really |simply |just |absolutely |unfortunately |still |definitely )?"

# Declined: said in the opening of the prose. A refusal leads; an aside deep in an answer
# about what it cannot do is not one.
DECLINE: tuple[Cue, ...] = (
    cue("cannot-do", r"can't " + _TASK, r"cannot " + _TASK, r"won't " + _TASK, before=_I),
    cue("cannot-do", r"not " + _TASK, before=_I + r"(?:can|will) "),
    cue(
        "unable-to",
        r"unable to " + _TASK,
        r"not (?:able|going) to " + _TASK,
        before=r"\b(?:i'm|i am|i was|i'll be|i will be|we're|we are) (?:\w+ )?",
    ),
    cue(
        "unable-to",
        r"able to " + _TASK,
        before=r"\b(?:i|we) (?:won't|will not|wouldn't|would not) be ",
    ),
    cue(
        "decline",
        r"decline (?:to|this|that|your|the)\b",
        r"refuse (?:to|this|that|your|the)\b",
        before=r"\bi(?:'d|'ll| must| have to| need to| will| would| respectfully| politely)* ",
    ),
    cue(
        "not-something-i",
        r"not something (?:i|we) (?:can|will|am able|'m able|are able)\b",
        before=r"\b(?:that|this|it|that request|this request)(?:'s| is) ",
    ),
    cue(
        "not-comfortable",
        r"comfortable\b",
        before=r"\bi(?:'m| am) not |\bi (?:do not|don't) feel ",
    ),
    cue(
        "not-appropriate-for-me",
        r"appropriate for me to\b",
        r"ethical for me to\b",
        r"responsible for me to\b",
        before=r"\b(?:not|n't be|not be|never) |\bin|\bun|\bir",
    ),
    cue(
        "not-appropriate-to",
        r"appropriate to (?:discuss|promote|provide|ask|answer|speculate|seek|suggest|make"
        r"|joke|compare|judge|generalize|label|encourage|help)\b",
        before=r"\b(?:it(?:'s| is| would be)|that(?:'s| is)) (?:never |not |in)",
    ),
    cue(
        "against-my",
        r"against my (?:programming|guidelines|policies|policy|principles|ethical|values)\b",
        r"my (?:programming|guidelines|policies) (?:prevents?|prohibits?|does not allow) me\b",
    ),
)

# Declined when it opens the reply: the stock openings of a refusal or of a lecture instead of
# an answer. Later in a reply the same words are part of an answer.
DECLINE_OPENING: tuple[Cue, ...] = (
    cue(
        "not-appropriate",
        *each(
            "not|never",
            r" (?:\w+ (?:or|and) )?(?:appropriate|ethical|safe|acceptable|okay|responsible)\b",
        ),
        r"not (?:accurate|fair) (?:or|and) (?:appropriate|fair|respectful)\b",
        before=r"^\s*(?:i don't think |i do not think )?(?:it(?:'s| is)|that(?:'s| is)|this is"
        r"|it would(?:n't| not) be) ",
    ),
    cue(
        "no-opinions",
        r"personal (?:opinions|beliefs|views|preferences)\b",
        before=r"\bi (?:don't|do not) (?:have|hold) (?:any )?",
    ),
    cue(
        "condone",
        r"condone\b",
        r"condemn\b",
        before=r"\b(?:i|and) (?:do not |don't |strongly )?|\bi (?:cannot|can't|will not|won't) ",
    ),
    cue("advise-against", r"advise against\b", before=r"\bi (?:must|would|have to|strongly) "),
    cue(
        "dont-think-appropriate",
        *each(
            "think|believe",
            r" (?:it(?:'s| is| would be)|that(?:'s| is)|this is)(?: \w+ (?:or|and))?"
            r" (?:appropriate|ethical|respectful|responsible|fair|valid|a good idea)\b",
        ),
        before=r"\bi (?:don't|do not) ",
    ),
    cue(
        "apologize-but",
        r"i apologi[sz]e,? but\b",
        r"i'm sorry,? but\b",
        r"i am sorry,? but\b",
        r"sorry,? but\b",
    ),
    cue("not-within-my", r"not within my (?:programming|ethical|guidelines|capabilit|abilit)"),
)

# Declined only when the whole prose is short: a longer reply that says this goes on to answer.
_SAY = (
    r"(?:\w+ )?(?:confirm|determine|verify|say|recall|supply|state|answer|know|provide|give"
    r"|pinpoint|find|respond|identify|tell)\b"
)

DECLINE_SHORT: tuple[Cue, ...] = (
    cue("dont-know", r"know\b", before=r"\bi (?:\w+ )?(?:don't|do not|cannot|can't) "),
    cue(
        "dont-know",
        r"have (?:no|absolutely no) (?:idea|clue|way of know)",
        before=r"\bi (?:\w+ )?",
    ),
    cue(
        "unsure-about",
        *each(
            "unsure|uncertain|not sure|not certain",
            r" (?:about|of|regarding|what|when|where|who|which|how|whether|if)\b",
        ),
        before=_FIRST + r"(?:\w+ ){0,2}",
    ),
    cue(
        "not-enough-to-answer",
        r"enough (?:information|context|details?|data) to\b",
        before=r"\b(?:don't|do not|doesn't|does not|didn't|did not) "
        r"(?:have|contain|provide|give|include) ",
    ),
    cue(
        "no-access",
        r"access to (?:real-time|current|live|the internet|your|external|personal|up-to-date"
        r"|that|this|reliable|specific|the)",
        r"the ability to (?:browse|access|see|view|open|run|execute)",
        before=r"\bi (?:don't|do not) have ",
    ),
    cue(
        "cannot-say",
        *each("unable|not able|not in a position|not qualified|not equipped", " to " + _SAY),
        before=_FIRST + r"(?:\w+ ){0,2}",
    ),
    cue("cannot-say", *each("can't|cannot|can not", " " + _SAY), before=r"\bi (?:\w+ )?"),
    cue(
        "no-information",
        *each(
            "don't have|do not have|don't know|do not know|lack",
            r" (?:that|this|the|enough|reliable|any|such|sufficient|definitive)(?: \w+)?"
            r" (?:information|knowledge|data|details?|answer|confidence)\b",
        ),
        before=r"\bi (?:\w+ )?",
    ),
    cue(
        "rather-not-guess",
        *each("guess|speculat", r"(?:e|ing)?\b"),
        before=r"\b(?:rather not|not (?:even )?going to|not want to|won't|will not|shouldn't"
        r"|refrain from)(?: \w+)? ",
    ),
    cue("pass", r"pass\b", before=r"\bi(?:'ll| will|'d| have to| must)(?: have to)? "),
    cue(
        "beyond-me",
        *each("beyond my|outside my|outside the scope of"),
        *each("not available|isn't available", r" (?:to me|in my)\b"),
    ),
)

_PLEASE = r"\b(?:(?:could|can|would) you (?:please |kindly )?|please )"

# Clarification, strong: asks for what it needs, whether or not it ends on a question mark.
ASK_STRONG: tuple[Cue, ...] = (
    cue("clarify", r"clarify\b", r"specify\b", before=_PLEASE),
    cue(
        "clarify",
        r"clarify (?:what|which|whether|if|your|a few|the following)\b",
        r"clarification\b",
        r"clarifying questions?\b",
        before=r"\b(?:some|a bit of|more|further|need|ask for|request|quick|a few|to|you) ",
    ),
    cue(
        "please-share",
        *each("provide|paste|post|share|send|show me"),
        r"tell me\b",
        r"confirm\b",
        r"give me\b",
        r"let me know\b",
        r"describe\b",
        r"explain what\b",
        before=_PLEASE,
    ),
    cue(
        "need-more",
        r"more (?:information|details?|context|specifics)\b",
        before=r"\b(?:provide|share|give me|tell me|need|require|i'd need|i would need|have|with) "
        r"(?:a (?:bit|little) |some )?",
    ),
    cue("what-you-mean", r"you mean\b", before=r"\bwhat (?:exactly )?(?:do )?"),
    cue(
        "before-i",
        r"before i (?:proceed|continue|start|begin|make|go ahead|write|answer|can|give)\b",
    ),
)

# Clarification, weak: counts only when the prose ends on a question mark.
ASK_WEAK: tuple[Cue, ...] = (
    cue(
        "which",
        r"which (?:one|ones|version|file|language|framework|library|database|os|platform|option"
        r"|approach|of (?:these|the|them|those)|specific|kind|type|part|aspect|method)\b",
    ),
    cue(
        "are-you",
        r"are you (?:asking|referring|looking for|using|trying to|working|running|on)\b",
    ),
    cue("did-you-mean", r"you mean\b", before=r"\b(?:did|do) "),
    cue("let-me-know-which", r"let me know (?:which|what|whether|how)\b"),
    cue("what-kind", r"what (?:kind|type|sort|version|language) of\b"),
)

# Offers ("would you like me to ...?") ask only as the opening of the reply; at the end of an
# answer they are a courtesy.
ASK_OFFER: tuple[Cue, ...] = (
    cue("offer", r"you (?:like|want) (?:me )?to\b", before=r"\b(?:would|do) "),
    cue("offer", r"shall i\b", r"should i\b"),
)

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
        *each("lean towards|lean toward"),
        r"i think\b(?! (?:of|about)\b)",
    ),
    cue("hedge", *each("sure|certain|confident"), before=r"\b(?:pretty|fairly|reasonably|almost) "),
    cue(
        "hedge",
        *each("chance|possibility|suggestion"),
        before=r"\b(?:a|some|good|small|remote) ",
    ),
)

# Extra cues read only in the comments of code the model wrote.
CODE_DOUBT: tuple[Cue, ...] = (cue("fixme", r"fixme\b", r"xxx\b", r"hack\b"),)


TABLES = (DECLINE, DECLINE_OPENING, DECLINE_SHORT, ASK_STRONG, ASK_WEAK, ASK_OFFER, DOUBT, HEDGE)
_FINDER = Finder(*TABLES, CODE_DOUBT)
scan = _FINDER.scan
first = _FINDER.first
