# `cmake --install <build> [--prefix DIR]`: the binary, the systemd unit, man pages, example
# upstream files, the JSON Schema, alert rules and the Grafana dashboard, and the licence.
# (Packagers: DESTDIR=... cmake --install build --prefix /usr; `--strip` strips the binary.)
include(GNUInstallDirs)

set(CONFGATE_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
    "Where the systemd unit goes, relative to the install prefix")

install(TARGETS confgate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit names the installed binary, so it is written at install time, when the prefix
# (--prefix may change it) is known.
install(CODE "
  set(CONFGATE_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(CONFGATE_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/deploy/systemd/confgate.service.in\"
                 \"${PROJECT_BINARY_DIR}/confgate.service\" @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/confgate.service DESTINATION ${CONFGATE_SYSTEMD_UNIT_DIR})

install(FILES man/confgate.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/confgate.yaml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES conf/confgate.yaml conf/demo.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES LICENSE README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES docs/confgate.schema.json DESTINATION ${CMAKE_INSTALL_DATADIR}/confgate)
install(FILES conf/prometheus/alerts.yaml conf/prometheus/prometheus.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/confgate/prometheus)
install(FILES deploy/grafana/confgate-dashboard.json DESTINATION ${CMAKE_INSTALL_DATADIR}/confgate/grafana)
