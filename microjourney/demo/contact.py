"""Contact-centre flows: escalations and other contacts in chat, voice and agent channels.

A self-service attempt that failed or stopped is followed, for a share of people
and within minutes, by ``contact_started`` in an assisted channel with
``properties.topic`` naming the moment. Every contact starts with that CRM event
and then follows its channel: ``chat_wait`` (queue, agent, resolution),
``call_transfer`` (IVR, hold, transfers) or an agent case (branch/back office,
where ``card_dispute`` is opened). Unresolved contacts come back as repeat contacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import surveys
from .world import CONTACT_HOURS, CONTACT_WEEK, DAY, HOUR, MINUTE, SECOND, Batch, World, props

CHANNELS = np.array(["chat", "voice", "agent"], dtype=object)
#: Share of failed/abandoned attempts that turn into a contact, per moment.
ESCALATE = {"card_payment": 0.22, "three_ds_verification": 0.25, "login": 0.2,
            "password_reset": 0.25, "delivery_tracking": 0.15, "delivery_delay_notice": 0.3,
            "card_block": 0.7, "id_verification": 0.4, "account_opening": 0.25}
#: Preferred (chat, voice, agent) mix per topic: lost cards are phoned in, ID
#: problems are solved in a branch.
PREFER = {"card_block": (0.15, 0.8, 0.05), "id_verification": (0.25, 0.15, 0.6),
          "card_dispute": (0.1, 0.45, 0.45)}
#: Topics of contacts that do not follow a self-service failure.
ORGANIC = {"general_enquiry": 0.2, "card_dispute": 0.16, "delivery_tracking": 0.13,
           "fees_question": 0.1, "statement_request": 0.08, "card_payment": 0.08,
           "login": 0.07, "password_reset": 0.05, "card_block": 0.05, "mortgage_enquiry": 0.08}
IVR = {"card_block": "cards", "card_dispute": "cards", "card_payment": "payments",
       "three_ds_verification": "payments", "login": "online_banking",
       "password_reset": "online_banking", "id_verification": "new_customers",
       "account_opening": "new_customers", "delivery_tracking": "shop",
       "delivery_delay_notice": "shop"}
QUEUES = np.array(["cards", "payments", "online_banking", "new_customers", "shop", "general"],
                  dtype=object)


@dataclass
class Texts:
    """Where customers wrote or said something: feeds the support-texts file."""

    pid: list[np.ndarray]
    t: list[np.ndarray]
    channel: list[np.ndarray]
    topic: list[np.ndarray]
    user: list[np.ndarray]  # whether the company knew who was writing

    def add(self, b: Batch, topic: np.ndarray, keep: float, w: World) -> None:
        mask = w.chance(len(b), keep)
        for col, value in zip((self.pid, self.t, self.channel, self.topic, self.user),
                              (b.pid, b.t, b.channel, topic, b.user), strict=True):
            col.append(value[mask])


def route(w: World, pid: np.ndarray, t: np.ndarray, topic: np.ndarray, origin: np.ndarray,
          anon: np.ndarray, user: np.ndarray, texts: Texts) -> None:
    """Send contacts to a channel by topic, segment and opening hours, then run them."""
    n = len(pid)
    if n == 0:
        return
    seg = w.people.segment[pid]
    pref = np.array([PREFER.get(x, (0.55, 0.38, 0.07)) for x in topic])
    pref[seg == 1] *= (0.6, 1.8, 1.0)   # premium customers phone their adviser line
    pref[seg == 2] *= (0.8, 1.0, 2.5)   # business customers see their relationship manager
    pref /= pref.sum(axis=1, keepdims=True)
    u = w.rng.random(n)
    channel = np.where(u < pref[:, 0], 0, np.where(u < pref[:, 0] + pref[:, 1], 1, 2))
    hour = (t % DAY) // HOUR
    closed = (hour < 7) | (hour >= 21)
    channel[closed & (channel == 1) & (topic != "card_block")] = 0  # the card line is 24/7
    # Branches open at 09:00: an agent visit waits for the next morning.
    morning = t - t % DAY + DAY + 9 * HOUR + w.rng.integers(0, 8 * HOUR, n)
    t = np.where(closed & (channel == 2), morning, t)
    prospect = w.people.prospect[pid]
    for c, name in enumerate(CHANNELS):
        m = channel == c
        k = int(m.sum())
        b = Batch(pid=pid[m], t=t[m].astype(np.int64), channel=np.full(k, name, dtype=object),
                  session=w.sessions(k, PREFIX[name]), device=np.zeros(k, dtype=int),
                  ctx=w.plain_for(pid[m]), anon=anon[m], user=user[m], row=np.arange(k))
        if name == "voice":  # the phone system knows the caller's number, not the customer
            b.anon, b.user = w.people.phone[b.pid], np.zeros(k, dtype=bool)
        if name == "agent":
            b.user = ~prospect[m]
        w.log.emit(b, "contact_started", props(k, topic=topic[m], origin=origin[m]))
        open_ = FLOWS[name](w, b, topic[m], texts)
        if len(open_):  # unresolved: some come back within days (repeat contacts)
            back = (origin[m][open_.row] != "repeat") & w.chance(len(open_), 0.45)
            again = open_.take(back)
            route(w, again.pid, again.t + w.wait(len(again), 20 * 3600, 1.0),
                  topic[m][again.row], np.full(len(again), "repeat", dtype=object),
                  w.people.anon_web[again.pid] if name == "voice" else again.anon,
                  again.user, texts)


def chat(w: World, b: Batch, topic: np.ndarray, texts: Texts) -> Batch:
    """``chat_wait``: chat_requested → agent_joined → chat_resolved / closed unresolved."""
    n = len(b)
    seg = w.people.segment[b.pid]
    b.t = b.t + w.wait(n, 3, 0.4)
    queue = np.where(seg == 1, "priority", "standard").astype(object)
    w.log.emit(b, "chat_requested", props(n, topic=topic, queue=queue))
    texts.add(b, topic, 0.9, w)
    # Queues are longest in the evening and on Mondays; premium has a priority queue.
    hour = (b.t % DAY) // HOUR
    monday = ((b.t // DAY + 3) % 7) == 0
    median = np.array([75, 30, 50])[seg] * np.where((hour >= 17) & (hour < 21), 1.8, 1.0)
    wait = w.wait(n, median * np.where(monday, 1.4, 1.0), 0.9)
    patience = w.wait(n, 300, 0.7)
    left = wait > patience
    b.t = b.t + np.minimum(wait, patience)
    gone = w.log.where(b, left, "chat_left", waited_seconds=patience // SECOND)
    b, wait = b.take(~left), wait[~left]
    w.log.emit(b, "agent_joined", props(len(b), queue_seconds=wait // SECOND))
    handle = w.wait(len(b), 360, 0.6)
    for i in range(1, 4):  # the conversation itself (part of no moment)
        talk = b.copy()
        talk.t = b.t + handle * i // 4
        w.log.emit(talk, "chat_message_sent",
                   props(len(talk), author=w.choose(["customer", "agent"], len(talk))))
    b.t = b.t + handle
    seconds = handle // SECOND
    resolved = w.chance(len(b), 0.84)
    w.log.where(b, resolved, "chat_resolved", handle_seconds=seconds)
    w.log.where(b, ~resolved, "chat_closed_unresolved",
                reason=w.choose(["needs_phone", "needs_branch", "system_down"], len(b)))
    w.log.emit(b, "contact_ended", props(len(b), handle_seconds=seconds))
    return Batch.concat(gone, b.take(~resolved))


def voice(w: World, b: Batch, topic: np.ndarray, texts: Texts) -> Batch:
    """``call_transfer``: call, IVR choice, agent answers, maybe a transfer, resolved."""
    n = len(b)
    seg = w.people.segment[b.pid]
    line = np.where(seg == 1, "premium", "main").astype(object)
    w.log.emit(b, "call_started", props(n, line=line))
    right = np.array([IVR.get(x, "general") for x in topic], dtype=object)
    misroute = w.chance(n, 0.18)  # the menu does not fit the problem: wrong queue first
    queue = np.where(misroute, w.choose(QUEUES, n), right)
    unclear = w.chance(n, 0.15)
    b.t = b.t + w.wait(n, 20, 0.5)
    w.log.where(b, unclear, "ivr_choice", option="not_recognised", attempt=1)
    b.t = b.t + np.where(unclear, w.wait(n, 15, 0.5), 0)
    w.log.emit(b, "ivr_choice", props(n, option=queue, attempt=np.where(unclear, 2, 1)))
    b.t = b.t + w.wait(n, 25, 0.5)
    known = ~w.people.prospect[b.pid] & w.chance(n, 0.8)
    ident = b.take(known)
    w.log.emit(ident, "caller_identified", props(len(ident), method="ivr_pin"), user=True)
    b.user = known  # from here on the call is linked to the customer
    hold = w.wait(n, np.array([120, 40, 80])[seg], 0.8)
    patience = w.wait(n, 420, 0.6)
    drop = hold > patience
    b.t = b.t + np.minimum(hold, patience)
    dropped = w.log.where(b, drop, "call_dropped", during="hold",
                          hold_seconds=patience // SECOND)
    keep = ~drop
    b, hold, queue, right = b.take(keep), hold[keep], queue[keep], right[keep]
    misroute, topic = misroute[keep], topic[keep]
    w.log.emit(b, "agent_answered", props(len(b), queue=queue, hold_seconds=hold // SECOND))
    texts.add(b, topic, 0.45, w)
    moved = misroute | w.chance(len(b), 0.12)
    b.t = b.t + w.wait(len(b), np.where(moved, 90, 300), 0.6)
    w.log.where(b, moved, "call_transferred", from_queue=queue, to_queue=right,
                reason="wrong_department")
    hold2 = w.wait(len(b), 90, 0.8)
    lost = moved & w.chance(len(b), 0.1)
    b.t = b.t + np.where(moved, hold2, 0)
    gone = w.log.where(b, lost, "call_dropped", during="transfer")
    after = moved & ~lost
    w.log.where(b, after, "agent_answered", queue=right, hold_seconds=hold2 // SECOND,
                after_transfer=True)
    # Repeated authentication: the second agent asks the security questions again.
    asked = after & b.user & w.chance(len(b), 0.9)
    b.t[asked] += w.wait(len(b), 30, 0.4)[asked]
    w.log.where(b, asked, "caller_identified", method="security_questions", repeated=True)
    b, topic, moved, hold = b.take(~lost), topic[~lost], moved[~lost], hold[~lost]
    talk = w.wait(len(b), 300, 0.6)
    b.t = b.t + talk
    resolved = w.chance(len(b), 0.85)
    done = w.log.where(b, resolved, "call_resolved", topic=topic)
    surveys.ivr(w, done, moved[resolved], hold[resolved] / SECOND)
    w.log.where(b, ~resolved, "callback_promised")
    w.log.emit(b, "contact_ended", props(len(b), talk_seconds=talk // SECOND))
    dispute(w, done.take(topic[resolved] == "card_dispute"))
    return Batch.concat(dropped, gone, b.take(~resolved))


def agent(w: World, b: Batch, topic: np.ndarray, texts: Texts) -> Batch:
    """An agent case in a branch or the back office; ID checks and disputes happen here."""
    n = len(b)
    began = b.t
    b.t = b.t + w.wait(n, 30, 0.5)
    w.log.emit(b, "case_opened", props(n, topic=topic))
    b.t = b.t + w.wait(n, 480, 0.6)
    # Failed online ID checks are done in the branch; prospects then get their account.
    checked = w.log.where(b, topic == "id_verification", "id_verified", method="branch")
    new = checked.take(w.people.prospect[checked.pid])
    new.t = new.t + w.wait(len(new), 300, 0.4)
    new.user = np.ones(len(new), dtype=bool)
    w.log.emit(new, "account_opened", props(len(new), via="branch"))
    dispute(w, b.take(topic == "card_dispute"))
    w.log.emit(b, "case_note_added", props(n, topic=topic))
    texts.add(b, topic, 0.6, w)
    b.t = b.t + w.wait(n, 60, 0.5)
    w.log.emit(b, "contact_ended", props(n, handle_seconds=(b.t - began) // SECOND))
    return b.take(w.chance(n, 0.08))


def dispute(w: World, b: Batch) -> None:
    """``card_dispute``: opened → evidence requested → uploaded → resolved / rejected."""
    n = len(b)
    b.user = np.ones(n, dtype=bool)
    w.log.emit(b, "dispute_opened",
               props(n, amount=np.round(w.rng.lognormal(np.log(80), 0.8, n), 2),
                     reason=w.choose(["not_received", "duplicate", "not_recognised"], n)))
    mail = b.copy()
    mail.t = b.t + w.wait(n, 3600, 0.8)
    w.notify(mail, "evidence_requested", "email", props(n))
    sends = w.chance(n, 0.8)  # the others miss the email
    when = mail.t[sends] + w.wait(int(sends.sum()), 1.5 * 86400, 0.8)
    up = w.digital(b.pid[sends], when, 0.5, logged_in=(1.0, 1.0))
    w.log.emit(up, "evidence_uploaded", props(len(up), files=w.rng.integers(1, 4, len(up))))
    decide = b.copy()
    decide.channel = np.full(n, "agent", dtype=object)  # decided by the back office
    decide.t = mail.t + 10 * DAY  # without evidence the case is closed after ten days
    decide.t[sends] = up.t + w.wait(len(up), 4 * 86400, 0.6)
    won = sends & w.chance(n, 0.78)
    late = ~sends & w.chance(n, 0.5)
    w.log.where(decide, won, "dispute_resolved", outcome="refunded")
    w.log.where(decide, (sends & ~won) | late, "dispute_rejected",
                reason=np.where(late, "no_evidence", "insufficient_evidence").astype(object))


FLOWS = {"chat": chat, "voice": voice, "agent": agent}
PREFIX = {"chat": "chat-", "voice": "call-", "agent": "case-"}


def run(w: World) -> Texts:
    """Escalations from every recorded trouble, then organic contacts; returns the texts."""
    texts = Texts([], [], [], [], [])
    parts: list[tuple[Batch, np.ndarray, str]] = []
    for b, name in w.troubles:
        esc = b.take(w.chance(len(b), ESCALATE.get(name, 0.0)))
        esc.t = esc.t + w.wait(len(esc), 240, 0.8) + MINUTE // 2  # within minutes
        parts.append((esc, np.full(len(esc), name, dtype=object), "escalation"))
    k = w.size(0.09, floor=80)
    pid = w.pick(k)
    org = w.digital(pid, w.starts(k, CONTACT_WEEK, CONTACT_HOURS), 0.0, logged_in=(0.75, 0.75))
    parts.append((org, w.choose(list(ORGANIC), k, p=list(ORGANIC.values())), "direct"))
    every = Batch.concat(*(b for b, _, _ in parts))
    origin = np.concatenate([np.full(len(b), o, dtype=object) for b, _, o in parts])
    topic = np.concatenate([x for _, x, _ in parts])
    route(w, every.pid, every.t, topic, origin, every.anon, every.user, texts)
    return texts
