"""``python -m homesec_consumer``: run the consumer (``runner.main``)."""

from homesec_consumer.runner import main

if __name__ == "__main__":
    main()
