"""The phrases the text classifier looks for: refusals, questions, doubt and hedges.

Each phrase is a regex that opens with a literal word (gateway/cue_search.py finds them all in
one pass), plus what must come just before it. Every pattern runs on lowercased text with
typographic apostrophes made plain.
"""

from __future__ import annotations

from gateway.cue_search import Cue, Finder, Found, Hits, cue, each
from gateway.doubt_cues import CODE_DOUBT, CODE_NOTES, DOUBT, HEDGE

__all__ = ["CODE_DOUBT", "CODE_NOTES", "DOUBT", "HEDGE", "Cue", "Found", "Hits", "first", "scan"]

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
        r"decline[.!]",
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
        "refrain",
        r"refrain from\b",
        before=r"\b(?:i|we)(?:'ll|'d|'m| will| would| must| should| have to| need to| shall| am"
        r"| going to)*(?: have to| going to)? ",
    ),
    cue(
        "not-possible-to",
        r"possible (?:for me )?to (?:provide|give|answer|share|write|create|generate|help|assist"
        r"|comply|fulfil|fulfill|determine|say|predict|know|tell|offer|access)\b",
        before=r"\b(?:it(?:'s| is| would be)|that(?:'s| is)) (?:not |im)",
    ),
    cue(
        "against-my",
        r"against my (?:programming|guidelines|policies|policy|principles|ethical|values)\b",
        r"my (?:programming|guidelines|policies) (?:prevents?|prohibits?|does not allow) me\b",
        r"violates? (?:my|our|openai's|anthropic's|the content|the usage) (?:\w+ )?(?:policy"
        r"|policies|guidelines)\b",
    ),
    cue(
        "rather-not",
        r"rather not (?:help|assist|provide|write|create|engage|discuss|get into|go into)\b",
        before=r"\bi(?:'d| would) ",
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
    cue(
        "lecture",
        *each(
            "important to note|important to remember|important to understand"
            "|important to recognize|important to emphasize",
            r" that [^.!?]{0,160}?\b(?:illegal|unethical|harmful|dangerous|never (?:acceptable"
            r"|okay|ok|appropriate|justified|the answer)|not (?:acceptable|appropriate|ethical)"
            r"|a serious (?:crime|offense)|a crime)\b",
        ),
        before=r"^\s*(?:first(?:ly)?(?: and foremost)?,? )?(?:it(?:'s| is)|it is always) ",
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
        r"|that|this|reliable|specific|the|information|data|records|details)",
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
        *each("guess|speculat|mislead", r"(?:e|ing)?\b"),
        before=r"\b(?:rather not|not (?:even )?going to|not want to|won't|will not|shouldn't"
        r"|refrain from|n't want to)(?: \w+)? ",
    ),
    cue(
        "not-enough-to-say",
        *each(
            "confident|sure|certain|familiar|knowledgeable|informed",
            r" enough (?:\S+ ){0,7}to (?:" + _SAY + "|offer)",
        ),
        before=r"\b(?:not|n't)(?: \w+)? ",
    ),
    cue(
        "not-familiar",
        r"familiar with\b",
        before=_FIRST + r"(?:\w+ ){0,2}not (?:\w+ )?|\bi(?:'m| am) (?:\w+ )?un",
    ),
    cue(
        "need-to-consult",
        r"need to (?:consult|contact|check|look (?:it |this |that )?up|research)\b",
        before=r"\b(?:i|you)(?:'d| would| will|'ll)?(?: likely| probably)? ",
    ),
    cue("need-to-consult", *each("recommend|suggest", r" (?:consulting|contacting)\b")),
    cue(
        "no-information",
        *each(
            "does not|doesn't|do not|don't",
            r" (?:contain|have|include) (?:the|an|that|this|any) (?:answer|information)\b",
        ),
        before=r"\b(?:knowledge(?: base)?|data|training data|sources|records|memory) ",
    ),
    cue(
        "rather-not-answer",
        *each("prefer not to|rather not", r" (?:answer|say|respond|comment|give)\b"),
    ),
    cue("at-a-loss", r"at a (?:complete |total )?loss\b", before=_FIRST),
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

# Refusals in the first sentence with any verb ("I won't be drafting that", "I can't
# translate ..."), which count only when no answer follows them.
_NOT_REFUSING = (
    r"(?!help but|stress|emphasi[sz]e|overstate|guarantee|be (?:sure|certain)|say for|wait"
    r"|thank|believe|imagine|recommend|express|agree|promise|tell for|see why|think of"
    r"|find (?:a|any) (?:reason|fault)"
    # what it cannot do to check its work, or know: doubt (DOUBT) or a short decline
    r"|run|execute|test|verify|check|compile|access|browse|see|view|open|confirm|recall"
    r"|remember|know|say)\b"
)
DECLINE_FIRST: tuple[Cue, ...] = (
    cue(
        "will-not",
        *each(
            "can't|cannot|can not|won't|will not|must not|shouldn't|should not",
            " " + _NOT_REFUSING + r"(?:be )?[a-z]+",
        ),
        before=_I,
    ),
    cue(
        "will-not",
        *each("unable to|not able to|not going to", " " + _NOT_REFUSING + r"(?:be )?[a-z]+"),
        before=r"\b(?:i'm|i am|we're|we are) (?:\w+ )?",
    ),
)


TABLES = (DECLINE, DECLINE_OPENING, DECLINE_SHORT, ASK_STRONG, ASK_WEAK, ASK_OFFER, DOUBT, HEDGE)
_FINDER = Finder(*TABLES, CODE_DOUBT, CODE_NOTES, DECLINE_FIRST)
scan = _FINDER.scan
first = _FINDER.first
