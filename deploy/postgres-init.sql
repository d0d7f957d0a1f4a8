-- One database per control-plane service (docker-compose's PostgreSQL runs this once).
CREATE DATABASE transport_discovery;
CREATE DATABASE messaging_discovery;
CREATE DATABASE setup_node;
