"""The papers the experiments reproduce, cited once each (:attr:`Experiment.paper`)."""

DE_PALMA_2021 = ("De Palma, Kiani, Lloyd, \"Adversarial Robustness Guarantees for Random Deep "
                 "Neural Networks\", ICML 2021")
BARTLETT_2021 = ("Bartlett, Bubeck, Cherapanamjeri, \"Adversarial examples in multi-layer random "
                 "ReLU networks\", NeurIPS 2021")
BUBECK_2021 = ("Bubeck, Cherapanamjeri, Gidel, Tachet des Combes, \"A single gradient step finds "
               "adversarial examples on random two-layers neural networks\", NeurIPS 2021")
WANG_2022 = ("Wang, Ullah, Mianjy, Arora, \"Adversarial Robustness is at Odds with Lazy "
             "Training\", NeurIPS 2022")
