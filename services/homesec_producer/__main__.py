"""``python -m homesec_producer``: run the producer (``runner.main``)."""

from homesec_producer.runner import main

if __name__ == "__main__":
    main()
