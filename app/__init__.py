"""clickstream-analytics' ground floor: settings, events, the window engine, storage, Kafka
helpers, the Faust app's builder and the command line. The wired worker is
`agents.worker_app`."""
