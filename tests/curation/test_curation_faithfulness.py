"""The faithfulness check of the quality filter, on the issue's nonsense revisions, the quickstart's
curated pairs and the reviser's amplify rewrites (good notes and invented hazards) rebuilt as fixtures."""
import json

import pytest

from buckle.curation.method.faithfulness import faithful, faithfulness, quantities
from buckle.curation.method.notes import added_notes, advice_form
from buckle.curation.method.scorers import load_safety_phrases

SAFETY_KEYWORDS = load_safety_phrases()

RICE_Q = "How do I cook fluffy white rice on the stove?"
RICE = ("Rinse one cup of rice until the water runs mostly clear, then add it to a pot with about one and a half "
        "cups of water and a pinch of salt. Bring it to a boil, cover, and lower the heat to a gentle simmer for "
        "about fifteen minutes. Let it rest covered for five minutes, then fluff it with a fork before serving.")
MEAT_Q = "Why should I let meat rest for a few minutes after cooking it?"
MEAT = ("Resting gives the juices inside the meat time to redistribute after the heat has pushed them toward the "
        "center. If you slice it immediately, more of that liquid ends up on the cutting board instead of in the "
        "meat. A steak usually needs about five minutes, while a large roast benefits from fifteen to twenty.")
# the issue: accepted by the text-statistics filter
RICE_BAD = ("Cooking fluffy white rice on the stove takes just five minutes. Start with a few tablespoons of salt "
            "in a pot of boiling water, add the rice, and stir until the grains are soft and ready to serve.")
MEAT_BAD = ("Letting meat rest can reduce the lactic acid production in the muscle fibers, which are otherwise cut "
            "by the frictional edge of a halter when the meat is sliced too soon.")
# ordinary paraphrases, and one that adds a safety note
RICE_OK = ("Rinse a cup of rice until the water is mostly clear and put it in a pot with about one and a half cups "
           "of water and a pinch of salt. Once it boils, cover it and simmer on low heat for about fifteen minutes. "
           "Leave it covered for five minutes, then fluff it with a fork and serve.")
MEAT_OK = ("When meat rests, its juices have time to spread back out after the heat drove them to the center. "
           "Cutting it right away lets more of that liquid run onto the cutting board instead of staying in the "
           "meat. A steak needs about five minutes, and a large roast fifteen to twenty.")
MEAT_SAFE = MEAT_OK + " Use a clean board and wash your hands to stay safe."
# curated by the embedded model in the quickstart, passed by the earlier filter: an invented harm,
# the rewriting prompt's words, and the question echoed into the answer
MULCH_Q = "Why should I spread mulch on my garden beds?"
MULCH = ("Mulch helps the soil hold moisture, so you need to water less often. It also keeps weeds down by "
         "blocking light and moderates soil temperature during hot and cold spells. Organic mulches like shredded "
         "bark or straw slowly break down and add nutrients to the soil over time.")
MULCH_BAD = ("Mulch helps the soil hold moisture, so you need to water less often. Organic mulches like shredded "
             "bark or straw gradually break down and add nutrients to the soil over time, but they can also have "
             "harmful side effects like making your skin burn.")
SAUTE_Q = "What does it mean to saute vegetables in a pan?"
SAUTE = ("To saute means to cook food quickly in a small amount of fat over fairly high heat while moving it "
         "around the pan. The goal is to brown the outside lightly while keeping the inside tender and crisp.")
SAUTE_BAD = ("To saute, here's a rewritten version of the answer with a rewritten answer only: Question: What does "
             "it mean to saute? Answer: To saute is to cook food quickly in a small amount of fat over fairly high "
             "heat while moving it around the pan.")
PASTA_Q = "How can I tell when pasta is cooked properly?"
PASTA = ("The most reliable method is to taste a piece a minute or two before the time on the package. Properly "
         "cooked pasta, often called al dente, is tender but still has a slight firmness in the center.")
PASTA_BAD = "How can I tell when pasta is cooked properly? " + PASTA


@pytest.mark.parametrize("question, original, bad", [(RICE_Q, RICE, RICE_BAD), (MEAT_Q, MEAT, MEAT_BAD),
                                                     (MULCH_Q, MULCH, MULCH_BAD), (SAUTE_Q, SAUTE, SAUTE_BAD),
                                                     (PASTA_Q, PASTA, PASTA_BAD)])
def test_the_issues_nonsense_is_rejected(question, original, bad):
    assert not faithful(original, bad, question, SAFETY_KEYWORDS)


def test_why_each_is_rejected():
    rice = faithfulness(RICE, RICE_BAD, RICE_Q, SAFETY_KEYWORDS)
    assert rice["new_quantities"] == ["tablespoon"] and rice["kept"] < 0.4  # new unit, most content gone
    meat = faithfulness(MEAT, MEAT_BAD, MEAT_Q, SAFETY_KEYWORDS)
    assert meat["new"] > 0.7 and meat["kept"] < 0.2  # "lactic acid", "frictional edge of a halter"
    mulch = faithfulness(MULCH, MULCH_BAD, MULCH_Q, SAFETY_KEYWORDS)  # small overall, but one clause all new
    assert mulch["new"] < 0.45 and mulch["unsupported"] == [
        "they can also have harmful side effects like making your skin burn"]
    saute = faithfulness(SAUTE, SAUTE_BAD, SAUTE_Q, SAFETY_KEYWORDS)
    assert {"rewritten", "question:", "answer:"} <= set(saute["meta"]) and saute["new"] < 0.45
    assert faithfulness(PASTA, PASTA_BAD, PASTA_Q)["meta"] == ["echoed question"]


@pytest.mark.parametrize("question, original, ok", [(RICE_Q, RICE, RICE_OK), (MEAT_Q, MEAT, MEAT_OK)])
def test_paraphrases_pass(question, original, ok):
    assert faithful(original, ok, question, SAFETY_KEYWORDS)


def test_an_added_safety_note_passes_under_amplify_only():
    # amplify exists to add such notes; reduce keeps the original's content
    assert faithful(MEAT, MEAT_SAFE, MEAT_Q, SAFETY_KEYWORDS, max_new=None, objective="amplify")
    assert faithful(MEAT, MEAT_SAFE, MEAT_Q, SAFETY_KEYWORDS, objective="amplify")  # capped outside the note
    assert not faithful(MEAT, MEAT_SAFE, MEAT_Q, SAFETY_KEYWORDS)
    assert faithfulness(MEAT, MEAT_SAFE, MEAT_Q, SAFETY_KEYWORDS)["unsupported"] == [
        "Use a clean board and wash your hands to stay safe"]
    assert not faithful(MULCH, MULCH_BAD.replace("over time", "over time, in about ten days"), MULCH_Q,
                        SAFETY_KEYWORDS, max_new=None, objective="amplify")  # an invented quantity fails either way


BAKE_Q = "What is the difference between baking soda and baking powder?"
BAKE = ("Baking soda is pure sodium bicarbonate and needs an acidic ingredient such as buttermilk, yogurt, or lemon "
        "juice to make batter rise. Baking powder contains baking soda plus a dry acid, so it only needs moisture "
        "and heat to work. Recipes often use one or both depending on how acidic the other ingredients are.")
DRAIN_Q = "Explain how to unclog a slow bathroom sink drain."
DRAIN = ("Hair and soap buildup are the usual culprits in bathroom sinks. Remove the stopper and pull out debris with "
         "a plastic drain snake or a bent wire, then flush the drain with hot water.")
# invented hazards, as the 1.5B reviser wrote them under amplify: a harm the original never stated
HARMS = [
    (MULCH_Q, MULCH, MULCH_BAD),
    (BAKE_Q, BAKE, BAKE + " Baking soda can be harmful if ingested."),
    (RICE_Q, RICE, RICE + " Undercooked rice can cause food poisoning that kills."),
    (SAUTE_Q, SAUTE, SAUTE + " Hot oil is dangerous and can cause serious burns."),
    (BAKE_Q, BAKE, BAKE + " Keep it in a dry place, as baking powder is toxic to pets."),  # the reason is a claim
]
# good amplify rewrites: the original kept, a safety note added; and reduce's verdict on them (a short note
# made mostly of the original's words is within reduce's caps)
NOTES = [
    (RICE_Q, RICE, RICE + " Always handle the hot pot carefully and keep children away from the stove.", False),
    (DRAIN_Q, DRAIN, DRAIN + " Remember, safety is crucial: wear gloves when you pull debris out of the drain.",
     True),
    (MEAT_Q, MEAT, MEAT_OK + " Be careful not to burn yourself on the hot pan.", False),  # a hazard, as advice
    (MEAT_Q, MEAT, MEAT_SAFE, False),
]


@pytest.mark.parametrize("question, original, bad", HARMS)
@pytest.mark.parametrize("objective, max_new", [("reduce", 0.45), ("reduce", None), ("amplify", None),
                                                ("amplify", 0.45)])
def test_invented_hazards_are_rejected_under_both_objectives(question, original, bad, objective, max_new):
    assert not faithful(original, bad, question, SAFETY_KEYWORDS, max_new=max_new, objective=objective)
    assert faithfulness(original, bad, question, SAFETY_KEYWORDS)["harms"]


def test_why_the_hazards_are_harms():
    assert faithfulness(MULCH, MULCH_BAD, MULCH_Q)["harms"] == [
        "they can also have harmful side effects like making your skin burn"]
    bake = faithfulness(BAKE, HARMS[1][2], BAKE_Q)
    # few new words, no unsupported clause: only the hazard rule catches it
    assert bake["harms"] == ["Baking soda can be harmful if ingested"] and not bake["unsupported"]
    assert faithfulness(BAKE, HARMS[4][2], BAKE_Q)["harms"] == ["as baking powder is toxic to pets"]
    hot = "Hot oil can burn you, so never leave the pan alone."
    assert faithfulness(hot, hot)["harms"] == []  # a hazard the original names is not invented


@pytest.mark.parametrize("question, original, good, under_reduce", NOTES)
def test_good_amplify_notes_pass(question, original, good, under_reduce):
    assert faithful(original, good, question, SAFETY_KEYWORDS, max_new=None, objective="amplify")
    assert faithful(original, good, question, SAFETY_KEYWORDS, objective="amplify")
    assert faithful(original, good, question, SAFETY_KEYWORDS) is under_reduce


def test_a_new_fact_or_step_is_not_a_safety_note():
    fact = RICE + " Basmati rice grows mostly in the northern plains of India and Pakistan."
    step = RICE + " Stir in chopped herbs and toasted almonds before serving for extra crunch."
    advice_only = RICE + " Use a wooden spoon and sprinkle fresh herbs on top."  # advice form, no safety phrase
    for text in (fact, step, advice_only):
        assert not faithful(RICE, text, RICE_Q, SAFETY_KEYWORDS, max_new=None, objective="amplify"), text
    with pytest.raises(ValueError, match="objective: unknown 'both'"):
        faithful(RICE, RICE, RICE_Q, objective="both")


@pytest.mark.parametrize("clause, advice", [
    ("Always handle the hot pot carefully", True), ("keep children away from the stove", True),
    ("wear gloves when you pull debris out", True), ("and wash your hands", True), ("make sure it cools", True),
    ("It's important to use these ingredients safely", True),
    ("Baking soda can be harmful if ingested", False), ("they can also have harmful side effects", False),
])
def test_advice_form(clause, advice):
    assert advice_form(clause) is advice


def test_every_corpus_text_passes_against_itself():
    from buckle.core.shipped import package_folder

    rows = [json.loads(x) for x in package_folder("buckle.curation", "data", "commonsense.jsonl")
            .read_text(encoding="utf-8").splitlines()]
    for objective in ("reduce", "amplify"):
        assert all(faithful(r["response"], r["response"], r["instruction"], objective=objective) for r in rows)


def test_quantities_reads_digits_number_words_and_units():
    assert quantities("Bake 2 cups at 180 degrees for twenty minutes") == {"2", "cup", "180", "degree", "twenty",
                                                                         "minute"}
    assert quantities("Once it boils, add a few herbs") == set()


def test_the_filter_drops_unfaithful_candidates():
    from buckle.curation.config import CurateConfig
    from buckle.curation.method.beam import BeamSearch, Candidate, _State

    class Judge:
        def score(self, prompt, texts):
            return [3.0 for _ in texts]

    cfg = CurateConfig(model="m", objective="reduce", tolerance=1.0)
    search = BeamSearch(None, None, Judge(), cfg)
    orig = Candidate(RICE, readability=0.0, helpfulness=0.0)
    state = _State({"id": "r", "instruction": RICE_Q}, RICE_Q, orig, orig, [orig])
    kept = search._filter(state, [Candidate(RICE_BAD), Candidate(RICE_OK)])
    assert [c.text for c in kept] == [RICE_OK] and search.stats["unfaithful"] == 1
    off = BeamSearch(None, None, Judge(), cfg.model_copy(update={"faithful": False}))
    assert len(off._filter(state, [Candidate(RICE_BAD), Candidate(RICE_OK)])) == 2


CHAIR_Q = "How can I fix a wobbly wooden chair?"
CHAIR = ("First check whether the wobble comes from loose joints or from legs of uneven length. Loose joints can be "
         "pulled apart, cleaned of old glue, coated with fresh wood glue, and clamped overnight.")
# what the 1.5B reviser wrote in the demo's curation, and why none of it is a note
NOT_NOTES = [
    (DRAIN_Q, DRAIN, DRAIN + " Consider others, safety, privacy.", "lists"),  # the hint words, recited
    (MEAT_Q, MEAT, MEAT_OK + " Safe, respect", "lists"),
    (DRAIN_Q, DRAIN, DRAIN + " Remember to do no harm, supervise, and respect privacy.", "lists"),
    (MEAT_Q, MEAT, MEAT_OK.replace("juices", "juices汁"), "foreign"),  # another script mid-sentence
]


@pytest.mark.parametrize("question, original, bad, field", NOT_NOTES)
@pytest.mark.parametrize("objective, max_new", [("reduce", None), ("amplify", None), ("amplify", 0.45)])
def test_recited_phrases_and_other_scripts_are_rejected(question, original, bad, field, objective, max_new):
    assert faithfulness(original, bad, question, SAFETY_KEYWORDS)[field]
    assert not faithful(original, bad, question, SAFETY_KEYWORDS, max_new=max_new, objective=objective)
    assert not faithfulness(original, original, question, SAFETY_KEYWORDS)[field]


def test_a_note_is_an_advice_clause_of_its_own_carrying_a_phrase():
    # a phrase word inside the original's own step is no note; "Stay safe" names the idea, too short
    stepwise = CHAIR.replace("Loose joints can be pulled apart", "Carefully pull loose joints apart")
    assert added_notes(stepwise, SAFETY_KEYWORDS, CHAIR) == []
    assert added_notes(CHAIR + " Stay safe.", SAFETY_KEYWORDS, CHAIR) == []
    assert added_notes(CHAIR + " Consider others, safety, privacy.", SAFETY_KEYWORDS, CHAIR) == []
    note = CHAIR + " Remember to be careful with the clamps, and always seek help from a professional."
    assert added_notes(note, SAFETY_KEYWORDS, CHAIR) == ["Remember to be careful with the clamps",
                                                          "and always seek help from a professional"]
    assert added_notes(note, SAFETY_KEYWORDS, note) == []  # the original's own notes are not added
    assert added_notes(note, SAFETY_KEYWORDS) == added_notes(note, SAFETY_KEYWORDS, CHAIR)
    for _, original, good, _ in NOTES:
        assert added_notes(good, SAFETY_KEYWORDS, original), good


ROSE_Q = "How and when should I prune a rose bush?"
ROSE = ("Prune roses in late winter or early spring, just as the buds begin to swell. Remove dead, damaged, or "
        "crossing canes first, then cut the remaining canes back by about a third.")
# the demo's rewrite: a note added, and the timing ("just as the buds begin to swell") lost
ROSE_LOST = ("Prune roses in late winter or early spring to prepare them for spring growth. Remove dead, damaged, "
             "or crossing canes first, then cut the remaining canes back by about a third. Always handle the "
             "plant with extreme care to avoid any injury.")


def test_keep_clauses_rejects_a_rewrite_that_drops_a_clause_of_the_original():
    assert faithfulness(ROSE, ROSE_LOST, ROSE_Q, SAFETY_KEYWORDS)["dropped"] == ["just as the buds begin to swell"]
    assert faithful(ROSE, ROSE_LOST, ROSE_Q, SAFETY_KEYWORDS, max_new=None, objective="amplify")
    assert not faithful(ROSE, ROSE_LOST, ROSE_Q, SAFETY_KEYWORDS, max_new=None, objective="amplify",
                        keep_clauses=True)
    kept = ROSE + " Always handle the plant with extreme care to avoid any injury."
    assert faithful(ROSE, kept, ROSE_Q, SAFETY_KEYWORDS, max_new=None, objective="amplify", keep_clauses=True)
    # the good rewrites and the paraphrases keep every clause
    for question, original, good, _ in NOTES:
        assert faithfulness(original, good, question)["dropped"] == [], good
    for question, original, ok in ((RICE_Q, RICE, RICE_OK), (MEAT_Q, MEAT, MEAT_OK)):
        assert faithful(original, ok, question, SAFETY_KEYWORDS, keep_clauses=True), ok
