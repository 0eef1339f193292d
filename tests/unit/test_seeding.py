from gradual.seeding import rng_for, stable_seed


def test_stable_seed_depends_on_every_key_and_nothing_else():
    assert stable_seed(0, "P17.train.3", 2) == stable_seed(0, "P17.train.3", 2)
    assert stable_seed(0, "P17.train.3", 2) != stable_seed(1, "P17.train.3", 2)
    assert stable_seed(0, "P17.train.3", 2) != stable_seed(0, "P17.train.4", 2)
    assert stable_seed(0, "P17.train.3", 2) != stable_seed(0, "P17.train.3", 3)
    assert 0 <= stable_seed(7, "x") < 2**32


def test_rng_for_repeats_its_draws():
    assert rng_for(3, "q").integers(0, 10**9, 5).tolist() == rng_for(3, "q").integers(0, 10**9, 5).tolist()
