# argserve_add_pytest_files(PREFIX DIR LABEL l TIMEOUT s [FIXTURES f] ENVIRONMENT VAR=value ...):
# one ctest per DIR/test_*.py, named PREFIX_<file>, run with Debian's Python from the source root,
# so ctest -j runs them side by side.
function(argserve_add_pytest_files prefix dir)
  cmake_parse_arguments(PYTEST "" "LABEL;TIMEOUT;FIXTURES" "ENVIRONMENT" ${ARGN})
  file(GLOB test_files ${dir}/test_*.py)
  foreach(test_file IN LISTS test_files)
    get_filename_component(test_name ${test_file} NAME_WE)
    set(name ${prefix}_${test_name})
    add_test(NAME ${name}
             COMMAND ${ARGSERVE_PYTHON} -m pytest -q -p no:cacheprovider ${test_file}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_property(TEST ${name} PROPERTY ENVIRONMENT ${PYTEST_ENVIRONMENT})
    set_tests_properties(${name} PROPERTIES LABELS ${PYTEST_LABEL} TIMEOUT ${PYTEST_TIMEOUT})
    if(PYTEST_FIXTURES)
      set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED ${PYTEST_FIXTURES})
    endif()
  endforeach()
endfunction()
